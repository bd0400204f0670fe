//! `--interface eth0`: the IPv4 address of a network interface, as Dask's
//! `--interface` picks the address a worker serves on.

use anyhow::{bail, Result};
use std::ffi::CStr;
use std::net::Ipv4Addr;

/// The first IPv4 address of interface `name`.
pub fn ipv4_of(name: &str) -> Result<Ipv4Addr> {
    let mut found = Vec::new();
    let mut all = Vec::new();
    // SAFETY: getifaddrs fills a linked list that we only read, then free once.
    unsafe {
        let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
        if libc::getifaddrs(&mut head) != 0 {
            bail!(
                "listing network interfaces: {}",
                std::io::Error::last_os_error()
            );
        }
        let mut at = head;
        while !at.is_null() {
            let entry = &*at;
            let this = CStr::from_ptr(entry.ifa_name)
                .to_string_lossy()
                .into_owned();
            let addr = entry.ifa_addr;
            if !addr.is_null() && i32::from((*addr).sa_family) == libc::AF_INET {
                let v4 = &*(addr as *const libc::sockaddr_in);
                let ip = Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr));
                if this == name {
                    found.push(ip);
                }
            }
            if !all.contains(&this) {
                all.push(this);
            }
            at = entry.ifa_next;
        }
        libc::freeifaddrs(head);
    }
    match found.first() {
        Some(ip) => Ok(*ip),
        None => bail!(
            "--interface {name:?}: no such interface with an IPv4 address (interfaces here: {})",
            all.join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn loopback_is_found_and_unknown_names_are_errors() {
        assert_eq!(super::ipv4_of("lo").unwrap(), std::net::Ipv4Addr::LOCALHOST);
        let error = super::ipv4_of("nope0").unwrap_err().to_string();
        assert!(
            error.contains("\"nope0\"") && error.contains("lo"),
            "{error}"
        );
    }
}

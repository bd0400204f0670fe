//! Addresses: `tcp://host:port`, `tls://host:port`, or a bare `host:port`.

use super::connection::CommError;
use std::fmt;
use std::str::FromStr;

/// Where a scheduler or worker listens.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Address {
    /// Host name or IP.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Whether connections use TLS.
    pub tls: bool,
}

impl Address {
    /// `host:port`, for the socket layer.
    pub fn socket(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The name TLS checks the server's certificate against.
    pub fn server_name(&self) -> Result<rustls::pki_types::ServerName<'static>, CommError> {
        rustls::pki_types::ServerName::try_from(self.host.clone()).map_err(|e| {
            CommError::Config(format!(
                "{:?} is not a valid TLS server name: {e}",
                self.host
            ))
        })
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "tls" } else { "tcp" };
        write!(f, "{scheme}://{}", self.socket())
    }
}

impl FromStr for Address {
    type Err = CommError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| CommError::Config(format!("bad address {text:?}: {why}"));
        let (tls, rest) = if let Some(rest) = text.strip_prefix("tls://") {
            (true, rest)
        } else if let Some(rest) = text.strip_prefix("tcp://") {
            (false, rest)
        } else if text.contains("://") {
            return Err(bad("the scheme must be tcp:// or tls://"));
        } else {
            (false, text)
        };
        let (host, port) = rest
            .rsplit_once(':')
            .ok_or_else(|| bad("expected host:port"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(bad("the host is empty"));
        }
        let port = port
            .parse::<u16>()
            .map_err(|_| bad("the port must be a number from 0 to 65535"))?;
        Ok(Address {
            host: host.to_string(),
            port,
            tls,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_and_print() {
        let a: Address = "tls://127.0.0.1:8786".parse().unwrap();
        assert!(a.tls);
        assert_eq!(a.to_string(), "tls://127.0.0.1:8786");
        let b: Address = "localhost:1".parse().unwrap();
        assert_eq!(b.to_string(), "tcp://localhost:1");
        let v6: Address = "tcp://[::1]:9".parse().unwrap();
        assert_eq!(v6.socket(), "[::1]:9");
        for bad in ["http://x:1", "x", "x:99999", ":1"] {
            assert!(bad.parse::<Address>().is_err(), "{bad}");
        }
    }
}

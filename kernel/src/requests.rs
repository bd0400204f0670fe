//! Reading requests off the shell and control sockets. `jupyter-protocol`'s
//! types require fields the messaging spec lets clients leave out (for
//! example jupyter_client's `history(hist_access_type="search")` sends no
//! `unique`), so the content is completed with the spec's defaults first.
//! The HMAC signature is checked by `jupyter-zmq-client` as usual.

use jupyter_protocol::{Header, JupyterMessage, JupyterMessageContent};
use jupyter_zmq_client::{Connection, RawMessage};
use serde_json::{json, Value};
use zeromq::SocketRecv;

/// Why no request was read.
#[derive(Debug)]
pub enum ReadError {
    /// The socket is closed.
    Closed(String),
    /// A message was dropped: a bad signature, not JSON, a content that
    /// cannot be read even with defaults.
    Refused(String),
}

/// Reads one request.
pub async fn read<S: SocketRecv>(
    connection: &mut Connection<S>,
) -> Result<JupyterMessage, ReadError> {
    let multipart = connection
        .socket
        .recv()
        .await
        .map_err(|e| ReadError::Closed(e.to_string()))?;
    parse(multipart, connection).map_err(ReadError::Refused)
}

fn parse<S>(
    multipart: zeromq::ZmqMessage,
    connection: &Connection<S>,
) -> Result<JupyterMessage, String> {
    let raw = RawMessage::from_multipart(multipart, &connection.mac).map_err(|e| e.to_string())?;
    if raw.jparts.len() < 4 {
        return Err(format!("a message of {} parts", raw.jparts.len()));
    }
    let header: Header =
        serde_json::from_slice(&raw.jparts[0]).map_err(|e| format!("its header: {e}"))?;
    let mut content: Value =
        serde_json::from_slice(&raw.jparts[3]).map_err(|e| format!("its content: {e}"))?;
    fill_defaults(&header.msg_type, &mut content);
    let content = JupyterMessageContent::from_type_and_content(&header.msg_type, content)
        .map_err(|e| format!("a {} whose content cannot be read: {e}", header.msg_type))?;
    Ok(JupyterMessage {
        zmq_identities: raw.zmq_identities,
        parent_header: serde_json::from_slice(&raw.jparts[1]).ok(),
        metadata: serde_json::from_slice(&raw.jparts[2]).unwrap_or_else(|_| json!({})),
        header,
        content,
        buffers: raw.jparts.get(4..).map(<[_]>::to_vec).unwrap_or_default(),
        channel: None,
    })
}

/// The messaging spec's defaults for fields a request may leave out.
fn fill_defaults(msg_type: &str, content: &mut Value) {
    let defaults = match msg_type {
        "execute_request" => json!({
            "silent": false, "store_history": true, "user_expressions": {},
            "allow_stdin": true, "stop_on_error": true
        }),
        "history_request" => json!({
            "output": false, "raw": true, "hist_access_type": "range", "session": null,
            "start": 0, "stop": 0, "n": 0, "pattern": "*", "unique": false
        }),
        "complete_request" | "is_complete_request" => json!({ "code": "", "cursor_pos": 0 }),
        "inspect_request" => json!({ "code": "", "cursor_pos": 0, "detail_level": 0 }),
        "shutdown_request" => json!({ "restart": false }),
        _ => return,
    };
    if let (Value::Object(content), Value::Object(defaults)) = (content, defaults) {
        for (key, value) in defaults {
            content.entry(key).or_insert(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jupyter_protocol::HistoryRequest;

    #[test]
    fn a_search_without_unique_or_n_reads() {
        let mut content =
            json!({ "hist_access_type": "search", "pattern": "1*", "output": false, "raw": true });
        fill_defaults("history_request", &mut content);
        match JupyterMessageContent::from_type_and_content("history_request", content).unwrap() {
            JupyterMessageContent::HistoryRequest(HistoryRequest::Search {
                unique,
                n,
                pattern,
                ..
            }) => {
                assert!(!unique);
                assert_eq!(n, 0);
                assert_eq!(pattern, "1*");
            }
            other => panic!("{other:?}"),
        }
    }
}

//! Reading Server-Sent Events (the live results of a check) from a byte stream. Bytes are
//! buffered until a frame is complete and only whole frames are decoded, so a character
//! split across two network chunks arrives intact.

/// One event: its `event:` name (empty when none) and its `data:` lines joined by `\n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub name: String,
    pub data: String,
}

/// Turns chunks of an event stream into events.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
}

impl Decoder {
    /// Takes the next chunk; returns the events it completed, in order.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<Event> {
        self.buf.extend_from_slice(chunk);
        let mut events = Vec::new();
        while let Some((end, sep)) = frame_end(&self.buf) {
            let frame: Vec<u8> = self.buf.drain(..end + sep).collect();
            if let Some(event) = parse(&String::from_utf8_lossy(&frame[..end])) {
                events.push(event);
            }
        }
        events
    }
}

/// Where the first frame ends (a blank line) and the length of the separator.
fn frame_end(buf: &[u8]) -> Option<(usize, usize)> {
    (0..buf.len()).find_map(|i| {
        if buf[i..].starts_with(b"\n\n") {
            Some((i, 2))
        } else if buf[i..].starts_with(b"\r\n\r\n") {
            Some((i, 4))
        } else {
            None
        }
    })
}

fn parse(frame: &str) -> Option<Event> {
    let mut name = String::new();
    let mut data: Option<String> = None;
    for line in frame.lines() {
        // Comments (keep-alives) start with a colon.
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => name = value.to_string(),
            "data" => match &mut data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => data = Some(value.to_string()),
            },
            _ => {}
        }
    }
    data.map(|data| Event { name, data })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_byte_text_split_at_every_byte_survives() {
        let stream = "event: result\ndata: {\"agent\":{\"name\":\"Zürich-東京-🛰\"}}\n\n\
                      : keep-alive\n\nevent: finished\ndata: {}\n\n";
        let bytes = stream.as_bytes();
        for cut in 0..=bytes.len() {
            let mut d = Decoder::default();
            let mut events = d.push(&bytes[..cut]);
            events.extend(d.push(&bytes[cut..]));
            assert_eq!(
                events,
                vec![
                    Event {
                        name: "result".into(),
                        data: "{\"agent\":{\"name\":\"Zürich-東京-🛰\"}}".into()
                    },
                    Event {
                        name: "finished".into(),
                        data: "{}".into()
                    }
                ],
                "split at byte {cut}"
            );
        }
    }

    #[test]
    fn byte_by_byte_multi_line_data_and_crlf() {
        let mut d = Decoder::default();
        let mut events = Vec::new();
        for b in "data: a\r\ndata:b\r\n\r\nevent:x\ndata\n\n".bytes() {
            events.extend(d.push(&[b]));
        }
        assert_eq!(events[0].data, "a\nb");
        assert_eq!(events[0].name, "");
        assert_eq!(events[1].name, "x");
        assert_eq!(events[1].data, "");
    }
}

//! Naming what a serde error is about, for the `details.field` of a 422: the server's JSON
//! extractor and the check spec's reader (which names `options.count`) read errors the same way.

/// The field an error at `path` (serde_path_to_error's, `.` for the whole value) is about, `""`
/// for the whole value: serde reports a missing field at its parent, so its name is appended.
pub fn failing_field(path: &str, message: &str) -> String {
    let parent = if path == "." { "" } else { path };
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next());
    match (missing, parent) {
        (Some(name), "") => name.to_string(),
        (Some(name), parent) => format!("{parent}.{name}"),
        (None, parent) => parent.to_string(),
    }
}

/// The message without the " at line L column C" serde_json appends to its own errors.
pub fn without_position(message: &str) -> &str {
    match message.rfind(" at line ") {
        Some(i) => &message[..i],
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_fields_are_named_below_their_parent() {
        assert_eq!(failing_field(".", "missing field `target`"), "target");
        assert_eq!(failing_field("check", "missing field `port`"), "check.port");
        assert_eq!(
            failing_field("options.count", "invalid type"),
            "options.count"
        );
        assert_eq!(failing_field(".", "expected an object"), "");
        assert_eq!(without_position("bad at line 1 column 9"), "bad");
        assert_eq!(without_position("bad"), "bad");
    }
}

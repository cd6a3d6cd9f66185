//! Judging a result against its expectations (`options.expect`): one assertion per
//! expectation given, each with what was expected and what was seen.

use regex::bytes::RegexBuilder;

use netcheck_proto::check::CheckSpec;
pub use netcheck_proto::expect::MAX_JUDGED_BODY;
use netcheck_proto::expect::{status_matches, Assertion, REGEX_DFA_SIZE_LIMIT, REGEX_SIZE_LIMIT};
use netcheck_proto::result::ResultData;

fn regex(pattern: &str) -> Result<regex::bytes::Regex, String> {
    RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_DFA_SIZE_LIMIT)
        .build()
        .map_err(|e| e.to_string())
}

/// Regex judges running at once. Matching cannot be interrupted, so a pattern that takes
/// long holds its thread to the end; the bound keeps such patterns from taking every
/// blocking thread, and a judge that cannot start in time is `expectation_unevaluable`.
static REGEX_JUDGES: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// Why the expectations could not be judged.
pub struct Unevaluable(pub String);

/// [`judge`] off the async runtime when it matches regular expressions, finished by
/// `deadline` or given up.
pub async fn judge_by(
    spec: &CheckSpec,
    data: Option<ResultData>,
    body: Vec<u8>,
    deadline: tokio::time::Instant,
) -> (Option<ResultData>, Result<Vec<Assertion>, Unevaluable>) {
    let regexes = match spec {
        CheckSpec::Http(o) => o.expect.as_ref().is_some_and(|e| e.has_regex()),
        _ => false,
    };
    if !regexes {
        let verdicts = judge(spec, data.as_ref(), &body);
        return (data, Ok(verdicts));
    }
    let late = || {
        Unevaluable(format!(
            "the regular expressions could not be evaluated within the check's {} ms",
            spec.budget_ms()
        ))
    };
    let Ok(Ok(permit)) = tokio::time::timeout_at(deadline, REGEX_JUDGES.acquire()).await else {
        return (data, Err(late()));
    };
    let spec = spec.clone();
    let copy = data.clone();
    let work = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        judge(&spec, copy.as_ref(), &body)
    });
    match tokio::time::timeout_at(deadline, work).await {
        Ok(Ok(verdicts)) => (data, Ok(verdicts)),
        _ => (data, Err(late())),
    }
}

fn at_most(name: &str, seen: Option<f64>, max: f64, unit: &str, missing: &str) -> Assertion {
    match seen {
        Some(v) => Assertion::new(
            name,
            v <= max,
            format!("{v:.2}{unit} (at most {max}{unit})"),
        ),
        None => Assertion::new(name, false, format!("{missing} (at most {max}{unit})")),
    }
}

/// The verdict on every expectation of `spec` for `data`; `body` is the start of an HTTP
/// response body (empty otherwise).
pub fn judge(spec: &CheckSpec, data: Option<&ResultData>, body: &[u8]) -> Vec<Assertion> {
    let mut out = Vec::new();
    match (spec, data) {
        (CheckSpec::Ping(o), data) => {
            let Some(e) = &o.expect else { return out };
            let r = match data {
                Some(ResultData::Ping(r)) => Some(r),
                _ => None,
            };
            if let Some(max) = e.max_loss_pct {
                out.push(at_most(
                    "max_loss_pct",
                    r.map(|r| r.loss_pct),
                    max,
                    "%",
                    "no packets sent",
                ));
            }
            if let Some(max) = e.max_avg_rtt_ms {
                let avg = r.and_then(|r| r.rtt_ms.as_ref()).map(|rtt| rtt.avg);
                out.push(at_most("max_avg_rtt_ms", avg, max, " ms", "no replies"));
            }
        }
        (CheckSpec::Tcp(o), data) => {
            let Some(e) = &o.expect else { return out };
            let connect = match data {
                Some(ResultData::Tcp(r)) if r.connected => r.connect_ms,
                _ => None,
            };
            if let Some(max) = e.max_connect_ms {
                out.push(at_most(
                    "max_connect_ms",
                    connect,
                    max,
                    " ms",
                    "not connected",
                ));
            }
        }
        (CheckSpec::Http(o), data) => {
            let Some(e) = &o.expect else { return out };
            let r = match data {
                Some(ResultData::Http(r)) => Some(r.as_ref()),
                _ => None,
            };
            let code = r.and_then(|r| r.status_code);
            if let Some(accepted) = &e.status {
                let list = accepted.join(", ");
                out.push(match code {
                    Some(c) => Assertion::new(
                        "status",
                        accepted.iter().any(|a| status_matches(c, a)),
                        format!("status {c} (expected {list})"),
                    ),
                    None => {
                        Assertion::new("status", false, format!("no response (expected {list})"))
                    }
                });
            }
            let body = &body[..body.len().min(MAX_JUDGED_BODY)];
            if let Some(text) = &e.body_contains {
                let found = memchr::memmem::find(body, text.as_bytes()).is_some();
                out.push(Assertion::new(
                    "body_contains",
                    found,
                    format!(
                        "{} {text:?} in the first {} bytes",
                        if found { "found" } else { "did not find" },
                        body.len()
                    ),
                ));
            }
            if let Some(pattern) = &e.body_regex {
                out.push(match regex(pattern) {
                    Ok(re) => {
                        let hit = re.is_match(body);
                        Assertion::new(
                            "body_regex",
                            hit,
                            format!(
                                "/{pattern}/ {} the first {} bytes",
                                if hit { "matches" } else { "does not match" },
                                body.len()
                            ),
                        )
                    }
                    Err(err) => {
                        Assertion::new("body_regex", false, format!("invalid regex: {err}"))
                    }
                });
            }
            for (name, pattern) in e.header.iter().flatten() {
                let key = name.to_ascii_lowercase();
                let value = r.and_then(|r| r.headers.get(&key));
                let label = format!("header.{key}");
                out.push(match (value, regex(pattern)) {
                    (_, Err(err)) => Assertion::new(label, false, format!("invalid regex: {err}")),
                    (None, _) => Assertion::new(
                        label,
                        false,
                        format!("no {key} header (expected /{pattern}/)"),
                    ),
                    (Some(v), Ok(re)) => {
                        let hit = re.is_match(v.as_bytes());
                        Assertion::new(
                            label,
                            hit,
                            format!(
                                "{key}: {v:?} {} /{pattern}/",
                                if hit { "matches" } else { "does not match" }
                            ),
                        )
                    }
                });
            }
            http_more(e, r, body, &mut out);
            if let Some(min) = e.cert_min_days {
                out.push(match r.and_then(|r| r.tls.as_ref()) {
                    Some(tls) => Assertion::new(
                        "cert_min_days",
                        tls.days_left >= min,
                        format!(
                            "certificate valid {} more days (at least {min})",
                            tls.days_left
                        ),
                    ),
                    None => Assertion::new(
                        "cert_min_days",
                        false,
                        format!("no certificate seen (at least {min} days)"),
                    ),
                });
            }
            if let Some(max) = e.max_total_ms {
                let total = r
                    .filter(|r| r.status_code.is_some())
                    .and_then(|r| r.timings_ms.total);
                out.push(at_most(
                    "max_total_ms",
                    total,
                    max,
                    " ms",
                    "no complete answer",
                ));
            }
        }
        (CheckSpec::Traceroute(o), data) => {
            let reached = matches!(data, Some(ResultData::Traceroute(r)) if r.reached);
            reached_assertion(&mut out, o.expect.as_ref(), reached);
        }
        (CheckSpec::Mtr(o), data) => {
            let reached = matches!(data, Some(ResultData::Mtr(r)) if r.reached);
            reached_assertion(&mut out, o.expect.as_ref(), reached);
        }
        (CheckSpec::Dns(o), data) => {
            let Some(e) = &o.expect else { return out };
            let r = match data {
                Some(ResultData::Dns(r)) => Some(r),
                _ => None,
            };
            if let Some(want) = &e.rcode {
                let got = r.and_then(|r| r.rcode.as_deref());
                out.push(Assertion::new(
                    "rcode",
                    got.is_some_and(|g| g.eq_ignore_ascii_case(want)),
                    format!(
                        "rcode {} (expected {})",
                        got.unwrap_or("none"),
                        want.to_ascii_uppercase()
                    ),
                ));
            }
            let answers = r.map(|r| r.answers.as_slice()).unwrap_or_default();
            if let Some(text) = &e.answer_contains {
                let needle = text.to_lowercase();
                let hit = answers
                    .iter()
                    .find(|a| a.value.to_lowercase().contains(&needle));
                out.push(Assertion::new(
                    "answer_contains",
                    hit.is_some(),
                    match hit {
                        Some(a) => format!("{} {} contains {text:?}", a.record_type, a.value),
                        None => format!("no answer of {} contains {text:?}", answers.len()),
                    },
                ));
            }
            if let Some(min) = e.min_answers {
                out.push(Assertion::new(
                    "min_answers",
                    answers.len() >= min as usize,
                    format!("{} answers (at least {min})", answers.len()),
                ));
            }
        }
    }
    out
}

/// `expect.reached` of a trace.
/// The expectations blackbox_exporter's modules need besides the first ones: a body or
/// headers that must not match, TLS or not, and the HTTP version.
fn http_more(
    e: &netcheck_proto::expect::HttpExpect,
    r: Option<&netcheck_proto::result::HttpResult>,
    body: &[u8],
    out: &mut Vec<Assertion>,
) {
    if let Some(pattern) = &e.body_not_regex {
        out.push(match regex(pattern) {
            Ok(re) => {
                let hit = re.is_match(body);
                Assertion::new(
                    "body_not_regex",
                    !hit,
                    format!(
                        "/{pattern}/ {} the first {} bytes",
                        if hit { "matches" } else { "does not match" },
                        body.len()
                    ),
                )
            }
            Err(err) => Assertion::new("body_not_regex", false, format!("invalid regex: {err}")),
        });
    }
    for (name, pattern) in e.header_not.iter().flatten() {
        let key = name.to_ascii_lowercase();
        let label = format!("header_not.{key}");
        let value = r.and_then(|r| r.headers.get(&key));
        out.push(match (value, regex(pattern)) {
            (_, Err(err)) => Assertion::new(label, false, format!("invalid regex: {err}")),
            (None, _) => Assertion::new(label, true, format!("no {key} header")),
            (Some(v), Ok(re)) => {
                let hit = re.is_match(v.as_bytes());
                Assertion::new(
                    label,
                    !hit,
                    format!(
                        "{key}: {v:?} {} /{pattern}/",
                        if hit { "matches" } else { "does not match" }
                    ),
                )
            }
        });
    }
    if let Some(want) = e.tls {
        let used = r.is_some_and(|r| r.tls.is_some());
        let said = |b: bool| if b { "over TLS" } else { "in clear" };
        out.push(Assertion::new(
            "tls",
            used == want,
            format!("answered {} (expected {})", said(used), said(want)),
        ));
    }
    if let Some(accepted) = &e.versions {
        let seen = r.and_then(|r| r.http_version.as_deref());
        out.push(Assertion::new(
            "versions",
            seen.is_some_and(|v| accepted.iter().any(|a| a.eq_ignore_ascii_case(v))),
            format!(
                "{} (expected {})",
                seen.unwrap_or("no answer"),
                accepted.join(", ")
            ),
        ));
    }
}

fn reached_assertion(
    out: &mut Vec<Assertion>,
    e: Option<&netcheck_proto::expect::TraceExpect>,
    reached: bool,
) {
    if let Some(want) = e.and_then(|e| e.reached) {
        out.push(Assertion::new(
            "reached",
            reached == want,
            format!(
                "the target {} (expected {})",
                if reached {
                    "answered"
                } else {
                    "did not answer"
                },
                if want { "an answer" } else { "none" }
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use netcheck_proto::check::{DnsOptions, HttpOptions, PingOptions, TcpOptions};
    use netcheck_proto::expect::{DnsExpect, HttpExpect, PingExpect, TcpExpect};
    use netcheck_proto::result::{
        DnsAnswer, DnsResult, HttpResult, HttpTimings, PingResult, Rtt, TcpResult,
    };

    fn verdicts(a: &[Assertion]) -> Vec<(&str, bool)> {
        a.iter().map(|a| (a.name.as_str(), a.ok)).collect()
    }

    #[test]
    fn ping_loss_and_rtt() {
        let spec = CheckSpec::Ping(PingOptions {
            expect: Some(PingExpect {
                max_loss_pct: Some(10.0),
                max_avg_rtt_ms: Some(5.0),
            }),
            ..Default::default()
        });
        let r = ResultData::Ping(PingResult {
            resolved_address: None,
            sent: 3,
            received: 2,
            loss_pct: 33.3,
            rtt_ms: Some(Rtt {
                min: 1.0,
                avg: 2.0,
                max: 3.0,
                mdev: 0.5,
            }),
            replies: vec![],
            assertions: vec![],
        });
        let a = judge(&spec, Some(&r), b"");
        assert_eq!(
            verdicts(&a),
            [("max_loss_pct", false), ("max_avg_rtt_ms", true)]
        );
        assert_eq!(a[0].detail, "33.30% (at most 10%)");
        // Without a result every expectation fails, saying why.
        let a = judge(&spec, None, b"");
        assert_eq!(
            verdicts(&a),
            [("max_loss_pct", false), ("max_avg_rtt_ms", false)]
        );
    }

    #[test]
    fn tcp_connect_time() {
        let spec = |max| {
            CheckSpec::Tcp(TcpOptions {
                port: 1,
                timeout_ms: 100,
                ip_version: None,
                expect: Some(TcpExpect {
                    max_connect_ms: Some(max),
                }),
            })
        };
        let r = ResultData::Tcp(TcpResult {
            resolved_address: None,
            port: 1,
            connected: true,
            connect_ms: Some(0.4),
            assertions: vec![],
        });
        assert!(judge(&spec(1.0), Some(&r), b"")[0].ok);
        assert!(!judge(&spec(0.1), Some(&r), b"")[0].ok);
    }

    #[test]
    fn http_status_body_headers_and_time() {
        let mut headers = BTreeMap::new();
        headers.insert(
            "content-type".to_string(),
            "text/html; charset=utf-8".to_string(),
        );
        let r = ResultData::Http(Box::new(HttpResult {
            resolved_address: None,
            status_code: Some(403),
            http_version: None,
            headers,
            headers_truncated: false,
            body_bytes: Some(20),
            timings_ms: HttpTimings {
                total: Some(12.0),
                ..Default::default()
            },
            tls: None,
            redirect_to: None,
            redirects: 0,
            assertions: vec![],
        }));
        let mut header = BTreeMap::new();
        header.insert("Content-Type".to_string(), "^text/html".to_string());
        header.insert("x-missing".to_string(), ".".to_string());
        let spec = CheckSpec::Http(HttpOptions {
            expect: Some(HttpExpect {
                status: Some(vec!["2xx".into(), "403".into()]),
                body_contains: Some("blocked".into()),
                body_regex: Some(r"(a+)+b".into()),
                header: Some(header),
                cert_min_days: Some(10),
                max_total_ms: Some(5.0),
                ..Default::default()
            }),
            ..Default::default()
        });
        // A pattern that backtracks catastrophically elsewhere runs in linear time here.
        let body = [b"geo-blocked ".as_slice(), &[b'a'; 100_000]].concat();
        let a = judge(&spec, Some(&r), &body);
        assert_eq!(
            verdicts(&a),
            [
                ("status", true),
                ("body_contains", true),
                ("body_regex", false),
                ("header.content-type", true),
                ("header.x-missing", false),
                ("cert_min_days", false),
                ("max_total_ms", false),
            ]
        );
    }

    #[test]
    fn dns_rcode_answers() {
        let spec = CheckSpec::Dns(DnsOptions {
            expect: Some(DnsExpect {
                rcode: Some("noerror".into()),
                answer_contains: Some("192.0.2".into()),
                min_answers: Some(2),
            }),
            ..Default::default()
        });
        let r = ResultData::Dns(DnsResult {
            resolver: None,
            rcode: Some("NOERROR".into()),
            truncated: false,
            withheld: 0,
            answer_count: None,
            authority_count: None,
            additional_count: None,
            answers: vec![DnsAnswer {
                name: "x.".into(),
                record_type: "A".into(),
                ttl: 60,
                value: "192.0.2.44".into(),
            }],
            assertions: vec![],
        });
        assert_eq!(
            verdicts(&judge(&spec, Some(&r), b"")),
            [
                ("rcode", true),
                ("answer_contains", true),
                ("min_answers", false)
            ]
        );
    }
}

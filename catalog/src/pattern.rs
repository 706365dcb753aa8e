//! Delegation path patterns (TUF 1.0 spec §4.5, `PATHPATTERN`).
//!
//! A pattern matches a target path when both have the same number of `/`-separated parts and each
//! part matches with shell-style wildcards (`*`, `?`, `[seq]`, `[!seq]`), so `*` never crosses a
//! `/`. This is the rule python-tuf and go-tuf apply; the spec leaves directory handling open.

/// Whether `target` is matched by the delegation path `pattern`.
pub fn path_matches(pattern: &str, target: &str) -> bool {
    let pattern_parts: Vec<&str> = pattern.split('/').collect();
    let target_parts: Vec<&str> = target.split('/').collect();
    pattern_parts.len() == target_parts.len()
        && pattern_parts.iter().zip(&target_parts).all(|(p, t)| fnmatch(p.as_bytes(), t.as_bytes()))
}

/// Shell-style matching of one path part (case-sensitive, like POSIX `fnmatch`).
fn fnmatch(pattern: &[u8], text: &[u8]) -> bool {
    // Iterative matcher with single-star backtracking.
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() {
            match pattern[p] {
                b'*' => {
                    star = Some((p, t));
                    p += 1;
                    continue;
                }
                b'?' => {
                    p += 1;
                    t += 1;
                    continue;
                }
                b'[' => {
                    if let Some((matched, next)) = class_match(&pattern[p..], text[t]) {
                        if matched {
                            p += next;
                            t += 1;
                            continue;
                        }
                    } else if text[t] == b'[' {
                        // An unclosed `[` is a literal, as in Python's fnmatch.
                        p += 1;
                        t += 1;
                        continue;
                    }
                }
                c if c == text[t] => {
                    p += 1;
                    t += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, st)) => {
                p = sp + 1;
                t = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// Matches `c` against a `[...]` class at the start of `pattern`; returns (matched, class length)
/// or `None` when the class is not closed.
fn class_match(pattern: &[u8], c: u8) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = matches!(pattern.get(i), Some(b'!'));
    if negate {
        i += 1;
    }
    let start = i;
    let mut matched = false;
    while i < pattern.len() {
        if pattern[i] == b']' && i > start {
            return Some((matched != negate, i + 1));
        }
        if i + 2 < pattern.len() && pattern[i + 1] == b'-' && pattern[i + 2] != b']' {
            if pattern[i] <= c && c <= pattern[i + 2] {
                matched = true;
            }
            i += 3;
        } else {
            if pattern[i] == c {
                matched = true;
            }
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::path_matches;

    #[test]
    fn star_stays_within_one_part() {
        assert!(path_matches("apps/hello-web/*", "apps/hello-web/1.0.0.json"));
        assert!(!path_matches("apps/*", "apps/hello-web/1.0.0.json"));
        assert!(!path_matches("apps/hello-web/*", "apps/hello-webx/1.0.0.json"));
        assert!(path_matches("*", "file.txt"));
        assert!(path_matches("a/*.tar", "a/x.tar"));
        assert!(!path_matches("a/*.tar", "a/x.tar.gz"));
    }

    #[test]
    fn classes_and_question_marks() {
        assert!(path_matches("v?/[a-c]*", "v1/beta"));
        assert!(!path_matches("v?/[!a-c]*", "v1/beta"));
        assert!(path_matches("[", "["));
        assert!(path_matches("*a*b", "xxaxxb"));
    }
}

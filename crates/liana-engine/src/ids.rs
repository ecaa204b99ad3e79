//! Container ids and names: 64 hex digits from the kernel's random source, and
//! docker-style `adjective_noun` names when none is given.

use crate::error::{Error, Result};

/// A new random 64-hex-digit id.
pub fn new_id() -> String {
    let mut b = [0u8; 32];
    fill_random(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn fill_random(buf: &mut [u8]) {
    let mut done = 0;
    while done < buf.len() {
        // SAFETY: getrandom writes at most the given length into the buffer.
        let n = unsafe { libc::getrandom(buf[done..].as_mut_ptr().cast(), buf.len() - done, 0) };
        if n > 0 {
            done += n as usize;
        }
    }
}

fn random_index(n: usize) -> usize {
    let mut b = [0u8; 8];
    fill_random(&mut b);
    (u64::from_le_bytes(b) % n as u64) as usize
}

const ADJECTIVES: &[&str] = &[
    "agile", "amber", "ancient", "bold", "brave", "bright", "calm", "clever", "cosmic", "crisp",
    "curious", "daring", "dreamy", "eager", "early", "fancy", "fearless", "gentle", "glad",
    "golden", "happy", "hidden", "humble", "jolly", "keen", "kind", "lively", "lucid", "mellow",
    "merry", "misty", "modest", "nimble", "noble", "patient", "plucky", "polite", "proud", "quick",
    "quiet", "rapid", "relaxed", "serene", "sharp", "shiny", "silent", "sleepy", "smooth",
    "steady", "sunny", "swift", "tender", "tidy", "vivid", "warm", "wild", "wise", "witty",
    "young", "zealous",
];

const NOUNS: &[&str] = &[
    "acacia", "alder", "aloe", "aspen", "bamboo", "baobab", "birch", "bonsai", "cactus", "cedar",
    "clover", "cypress", "elm", "fern", "fig", "ginkgo", "hazel", "hemlock", "hibiscus", "holly",
    "ivy", "jasmine", "juniper", "kapok", "larch", "laurel", "lilac", "linden", "lotus",
    "magnolia", "maple", "mimosa", "moss", "myrtle", "oak", "olive", "orchid", "palm", "pine",
    "poplar", "redwood", "rowan", "sage", "sequoia", "spruce", "sumac", "teak", "thyme", "tulip",
    "vine", "walnut", "willow", "wisteria", "yew",
];

/// A random `adjective_noun` name.
pub fn random_name() -> String {
    format!(
        "{}_{}",
        ADJECTIVES[random_index(ADJECTIVES.len())],
        NOUNS[random_index(NOUNS.len())]
    )
}

/// Checks a user-given name (docker's rule `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, at most 253
/// characters; a leading `/` is dropped as docker does).
pub fn validate_name(name: &str) -> Result<String> {
    let n = name.strip_prefix('/').unwrap_or(name);
    let ok = !n.is_empty()
        && n.len() <= 253
        && n.as_bytes()[0].is_ascii_alphanumeric()
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-');
    if ok {
        Ok(n.to_string())
    } else {
        Err(Error::InvalidName(name.into()))
    }
}

/// The 12-digit short form of an id.
pub fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_names() {
        let a = new_id();
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, new_id());
        assert!(random_name().contains('_'));
        assert_eq!(validate_name("/web-1.a_b").unwrap(), "web-1.a_b");
        for bad in ["", "-x", "a b", "a/b", "é"] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
        assert_eq!(short(&a).len(), 12);
    }
}

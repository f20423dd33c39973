//! A guard before the GSS-API reads a `FILE:` credential cache: its header and default
//! principal must parse.
//!
//! Why: MIT krb5 1.20 (Debian 12's) crashes the whole process (a bad pointer freed in
//! `krb5_cccol_have_content`) when the default cache is a file whose principal cannot be read —
//! an empty file, a truncated one, garbage. `curl --negotiate` crashes the same way. Checking
//! the two things `krb5_cc_get_principal` reads turns that into the ordinary "no ticket" error.
//! Other cache types (`KEYRING:`, `KCM:`, `DIR:`, `MEMORY:`) are left to the library.
//!
//! The format (MIT's `FILE` cache, versions 3 and 4, big-endian): `05 0v`; for v4 a 16-bit
//! header length and the header; then the default principal: name type (32 bits), component
//! count (32 bits), the realm and each component as a 32-bit length and bytes. Versions 1 and 2
//! (native byte order, last written in the 1990s) are not checked.

use std::path::{Path, PathBuf};

/// The components a principal may have before the file is called malformed (real ones have 1
/// to 3).
const MAX_COMPONENTS: u32 = 64;

/// The file behind the default credential cache when it is a `FILE:` cache: `KRB5CCNAME`
/// (`FILE:path` or a bare path), or, when it is unset, MIT's default `/tmp/krb5cc_<uid>`.
pub(crate) fn default_file_cache() -> Option<PathBuf> {
    match std::env::var_os("KRB5CCNAME") {
        Some(name) => file_cache(name.to_str()?),
        None => {
            use std::os::unix::fs::MetadataExt as _;
            // The process's uid, without `unsafe`: the owner of its own /proc entry.
            let uid = std::fs::metadata("/proc/self").ok()?.uid();
            Some(PathBuf::from(format!("/tmp/krb5cc_{uid}")))
        }
    }
}

/// The path of a `FILE:` cache name; `None` for other types.
fn file_cache(name: &str) -> Option<PathBuf> {
    if let Some(path) = name.strip_prefix("FILE:") {
        return Some(PathBuf::from(path));
    }
    name.starts_with('/').then(|| PathBuf::from(name))
}

/// `Err` with a reason when `path` exists and is not a cache whose default principal can be
/// read. A missing file is fine: the library reports it without crashing.
pub(crate) fn check(path: &Path) -> Result<(), String> {
    let Ok(bytes) = std::fs::read(path) else {
        return Ok(());
    };
    parse_principal(&bytes).map_err(|why| {
        format!(
            "the credential cache {} holds no Kerberos ticket ({why})",
            path.display()
        )
    })
}

/// Checks the header and the default principal of a cache file's bytes.
fn parse_principal(bytes: &[u8]) -> Result<(), &'static str> {
    let mut r = Reader(bytes);
    if bytes.is_empty() {
        return Err("the file is empty");
    }
    let version = match (r.u8(), r.u8()) {
        (Some(5), Some(v @ 1..=4)) => v,
        _ => return Err("not a credential cache file"),
    };
    if version < 3 {
        return Ok(()); // native byte order: left to the library
    }
    if version == 4 {
        let len = r.u16().ok_or("truncated header")?;
        r.skip(usize::from(len)).ok_or("truncated header")?;
    }
    r.u32().ok_or("no default principal")?; // name type
    let components = r.u32().ok_or("no default principal")?;
    if components > MAX_COMPONENTS {
        return Err("a malformed default principal");
    }
    for _ in 0..=components {
        // The realm, then each component.
        let len = r.u32().ok_or("a truncated default principal")?;
        let len = usize::try_from(len).map_err(|_| "a malformed default principal")?;
        r.skip(len).ok_or("a truncated default principal")?;
    }
    Ok(())
}

/// Big-endian reads from a byte slice.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take::<1>().map(|[b]| b)
    }

    fn u16(&mut self) -> Option<u16> {
        self.take().map(u16::from_be_bytes)
    }

    fn u32(&mut self) -> Option<u32> {
        self.take().map(u32::from_be_bytes)
    }

    fn skip(&mut self, n: usize) -> Option<()> {
        self.0 = self.0.get(n..)?;
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A v4 cache header with no tags and the principal `frank@TEST.LOCAL`.
    fn frank() -> Vec<u8> {
        let mut b = vec![5, 4, 0, 0];
        b.extend(1u32.to_be_bytes()); // KRB5_NT_PRINCIPAL
        b.extend(1u32.to_be_bytes());
        for part in ["TEST.LOCAL", "frank"] {
            b.extend(u32::try_from(part.len()).unwrap().to_be_bytes());
            b.extend(part.as_bytes());
        }
        b
    }

    #[test]
    fn a_cache_with_a_default_principal_passes() {
        assert_eq!(parse_principal(&frank()), Ok(()));
    }

    #[test]
    fn empty_truncated_and_foreign_files_are_refused() {
        assert_eq!(parse_principal(b""), Err("the file is empty"));
        assert_eq!(
            parse_principal(b"garbage"),
            Err("not a credential cache file")
        );
        let whole = frank();
        for cut in 2..whole.len() {
            assert!(parse_principal(&whole[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn only_file_caches_are_checked() {
        assert_eq!(file_cache("FILE:/tmp/x"), Some(PathBuf::from("/tmp/x")));
        assert_eq!(file_cache("/tmp/y"), Some(PathBuf::from("/tmp/y")));
        assert_eq!(file_cache("KEYRING:persistent:0"), None);
        assert_eq!(file_cache("KCM:"), None);
    }
}

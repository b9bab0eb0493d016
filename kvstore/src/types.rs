//! redb 2's encodings of the key and value types our stores use, decoded into the typed values
//! of today's redb, so that a v2 table is copied through redb's own types (which re-encode them
//! in today's format). Most encodings did not change: integers are little-endian, `&str` and
//! `&[u8]` are their bytes, `()` is empty, fixed-width tuples are their elements side by side.
//! Variable-width tuples did: redb 2 writes a u32 length for each element but the last (fixed
//! ones included) before the elements; redb 3 and later write varint lengths of the
//! variable-width elements only.

use redb::Value;

/// A type whose redb 2 encoding this crate decodes.
pub trait V2Value: Value {
    /// The name redb 2 recorded for the type in a table definition.
    fn v2_type_name() -> String;
    /// The width redb 2 recorded for the type, `None` for variable width.
    fn v2_fixed_width() -> Option<usize>;
    /// Decodes redb 2's encoding; the error says what is wrong with the bytes.
    fn from_v2<'a>(bytes: &'a [u8]) -> Result<Self::SelfType<'a>, String>
    where
        Self: 'a;
}

fn exact<const N: usize>(bytes: &[u8], what: &str) -> Result<[u8; N], String> {
    bytes
        .try_into()
        .map_err(|_| format!("{what} of {} bytes, expected {N}", bytes.len()))
}

macro_rules! integers {
    ($($t:ty),+) => {$(
        impl V2Value for $t {
            fn v2_type_name() -> String {
                stringify!($t).to_string()
            }
            fn v2_fixed_width() -> Option<usize> {
                Some(size_of::<$t>())
            }
            fn from_v2<'a>(bytes: &'a [u8]) -> Result<$t, String>
            where
                Self: 'a,
            {
                Ok(<$t>::from_le_bytes(exact(bytes, stringify!($t))?))
            }
        }
    )+};
}

integers!(u8, u16, u32, u64, u128, i8, i16, i32, i64, i128);

impl V2Value for () {
    fn v2_type_name() -> String {
        "()".to_string()
    }
    fn v2_fixed_width() -> Option<usize> {
        Some(0)
    }
    fn from_v2<'a>(bytes: &'a [u8]) -> Result<(), String>
    where
        Self: 'a,
    {
        if bytes.is_empty() {
            Ok(())
        } else {
            Err(format!("() of {} bytes", bytes.len()))
        }
    }
}

impl V2Value for &str {
    fn v2_type_name() -> String {
        "&str".to_string()
    }
    fn v2_fixed_width() -> Option<usize> {
        None
    }
    fn from_v2<'a>(bytes: &'a [u8]) -> Result<&'a str, String>
    where
        Self: 'a,
    {
        std::str::from_utf8(bytes).map_err(|error| format!("a &str that is not UTF-8: {error}"))
    }
}

impl V2Value for &[u8] {
    fn v2_type_name() -> String {
        "&[u8]".to_string()
    }
    fn v2_fixed_width() -> Option<usize> {
        None
    }
    fn from_v2<'a>(bytes: &'a [u8]) -> Result<&'a [u8], String>
    where
        Self: 'a,
    {
        Ok(bytes)
    }
}

impl<const N: usize> V2Value for &[u8; N] {
    fn v2_type_name() -> String {
        format!("[u8;{N}]")
    }
    fn v2_fixed_width() -> Option<usize> {
        Some(N)
    }
    fn from_v2<'a>(bytes: &'a [u8]) -> Result<&'a [u8; N], String>
    where
        Self: 'a,
    {
        bytes
            .try_into()
            .map_err(|_| format!("[u8;{N}] of {} bytes", bytes.len()))
    }
}

impl<const N: usize> V2Value for [u8; N] {
    fn v2_type_name() -> String {
        format!("[u8;{N}]")
    }
    fn v2_fixed_width() -> Option<usize> {
        Some(N)
    }
    fn from_v2<'a>(bytes: &'a [u8]) -> Result<[u8; N], String>
    where
        Self: 'a,
    {
        exact(bytes, &format!("[u8;{N}]"))
    }
}

/// Splits redb 2's encoding of a tuple of `N` elements into the elements' encodings.
fn split_tuple<const N: usize>(
    bytes: &[u8],
    widths: [Option<usize>; N],
) -> Result<[&[u8]; N], String> {
    let mut parts: [&[u8]; N] = [&[]; N];
    let mut rest = bytes;
    match tuple_width(&widths) {
        Some(total) => {
            if bytes.len() != total {
                return Err(format!(
                    "a fixed-width tuple of {} bytes, expected {total}",
                    bytes.len()
                ));
            }
            for (part, width) in parts.iter_mut().zip(widths) {
                let (head, tail) = rest.split_at(width.unwrap_or(0));
                *part = head;
                rest = tail;
            }
        }
        None => {
            let header = 4 * (N - 1);
            if bytes.len() < header {
                return Err(format!(
                    "a tuple of {} bytes, shorter than its {header}-byte length header",
                    bytes.len()
                ));
            }
            let (lengths, mut data) = bytes.split_at(header);
            for (i, part) in parts.iter_mut().enumerate().take(N - 1) {
                let length = u32::from_le_bytes(exact(&lengths[4 * i..4 * i + 4], "a length")?);
                let length = length as usize;
                if length > data.len() {
                    return Err(format!(
                        "tuple element {i} of {length} bytes, only {} remain",
                        data.len()
                    ));
                }
                let (head, tail) = data.split_at(length);
                *part = head;
                data = tail;
            }
            parts[N - 1] = data;
        }
    }
    Ok(parts)
}

fn tuple_width(widths: &[Option<usize>]) -> Option<usize> {
    widths
        .iter()
        .try_fold(0usize, |sum, width| sum.checked_add((*width)?))
}

impl<A: V2Value, B: V2Value> V2Value for (A, B) {
    fn v2_type_name() -> String {
        format!("({},{})", A::v2_type_name(), B::v2_type_name())
    }
    fn v2_fixed_width() -> Option<usize> {
        tuple_width(&[A::v2_fixed_width(), B::v2_fixed_width()])
    }
    fn from_v2<'a>(bytes: &'a [u8]) -> Result<Self::SelfType<'a>, String>
    where
        Self: 'a,
    {
        let [a, b] = split_tuple(bytes, [A::v2_fixed_width(), B::v2_fixed_width()])?;
        Ok((A::from_v2(a)?, B::from_v2(b)?))
    }
}

impl<A: V2Value, B: V2Value, C: V2Value> V2Value for (A, B, C) {
    fn v2_type_name() -> String {
        format!(
            "({},{},{})",
            A::v2_type_name(),
            B::v2_type_name(),
            C::v2_type_name()
        )
    }
    fn v2_fixed_width() -> Option<usize> {
        tuple_width(&[
            A::v2_fixed_width(),
            B::v2_fixed_width(),
            C::v2_fixed_width(),
        ])
    }
    fn from_v2<'a>(bytes: &'a [u8]) -> Result<Self::SelfType<'a>, String>
    where
        Self: 'a,
    {
        let [a, b, c] = split_tuple(
            bytes,
            [
                A::v2_fixed_width(),
                B::v2_fixed_width(),
                C::v2_fixed_width(),
            ],
        )?;
        Ok((A::from_v2(a)?, B::from_v2(b)?, C::from_v2(c)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// redb 2's variable-width tuple: a u32 length per element but the last, then the elements.
    fn v2_tuple(parts: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for part in &parts[..parts.len() - 1] {
            out.extend_from_slice(&(part.len() as u32).to_le_bytes());
        }
        for part in parts {
            out.extend_from_slice(part);
        }
        out
    }

    #[test]
    fn variable_width_tuples_decode() {
        let bytes = v2_tuple(&[b"bucket", b"dir/key"]);
        assert_eq!(<(&str, &str)>::from_v2(&bytes), Ok(("bucket", "dir/key")));
        // The fixed-width element still has its length written when it is not last.
        let bytes = v2_tuple(&[b"upload", &7u32.to_le_bytes()]);
        assert_eq!(<(&str, u32)>::from_v2(&bytes), Ok(("upload", 7)));
        let bytes = v2_tuple(&[&9u64.to_le_bytes(), b"x"]);
        assert_eq!(<(u64, &str)>::from_v2(&bytes), Ok((9, "x")));
        let bytes = v2_tuple(&[b"", b""]);
        assert_eq!(<(&str, &str)>::from_v2(&bytes), Ok(("", "")));
        assert_eq!(<(&str, &str)>::v2_type_name(), "(&str,&str)");
        assert_eq!(<(&str, u32)>::v2_fixed_width(), None);
    }

    #[test]
    fn fixed_width_tuples_decode() {
        let mut bytes = 5u64.to_le_bytes().to_vec();
        bytes.extend_from_slice(&6u64.to_le_bytes());
        assert_eq!(<(u64, u64)>::from_v2(&bytes), Ok((5, 6)));
        assert_eq!(<(u64, u64)>::v2_fixed_width(), Some(16));
        assert!(<(u64, u64)>::from_v2(&bytes[..15]).is_err());
    }

    #[test]
    fn bad_encodings_are_errors() {
        assert!(<(&str, &str)>::from_v2(&[1, 2]).is_err());
        assert!(<(&str, &str)>::from_v2(&[9, 0, 0, 0, b'a']).is_err());
        assert!(<(&str, u32)>::from_v2(&v2_tuple(&[b"a", b"xyz"])).is_err());
        assert!(<&str>::from_v2(&[0xFF]).is_err());
        assert!(u64::from_v2(&[0; 7]).is_err());
        assert!(<()>::from_v2(&[0]).is_err());
        assert!(<&[u8; 32]>::from_v2(&[0; 31]).is_err());
    }
}

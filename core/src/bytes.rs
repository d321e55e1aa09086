//! Byte strings as one block in the codec, not as a sequence of single bytes.
//!
//! postcard writes a byte string and a sequence of `u8` the same way (a varint length, then the
//! bytes), so these change no format: they only let the codec copy the bytes in one go instead
//! of visiting them one at a time. Plain `Vec<u8>` fields use `serde_bytes` directly; the
//! collections of byte strings below use these modules.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserializer, Serializer};
use serde_bytes::{ByteBuf, Bytes};

/// Key-value pairs, as `MultiSet` and `KeyValues` carry them.
type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// `Vec<Vec<u8>>`.
pub(crate) mod list {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(list: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(list.len()))?;
        for item in list {
            seq.serialize_element(Bytes::new(item))?;
        }
        seq.end()
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
        d.deserialize_seq(SeqOf::<ByteBuf>(PhantomData))
            .map(|items| items.into_iter().map(ByteBuf::into_vec).collect())
    }
}

/// `Vec<(Vec<u8>, Vec<u8>)>`.
pub(crate) mod pairs {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(
        pairs: &[(Vec<u8>, Vec<u8>)],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(pairs.len()))?;
        for (key, value) in pairs {
            seq.serialize_element(&(Bytes::new(key), Bytes::new(value)))?;
        }
        seq.end()
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Pairs, D::Error> {
        let pairs = d.deserialize_seq(SeqOf::<(ByteBuf, ByteBuf)>(PhantomData))?;
        Ok(pairs
            .into_iter()
            .map(|(k, v)| (k.into_vec(), v.into_vec()))
            .collect())
    }
}

/// `BTreeMap<Vec<u8>, Vec<u8>>`.
pub(crate) mod map {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(
        map: &BTreeMap<Vec<u8>, Vec<u8>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let mut out = s.serialize_map(Some(map.len()))?;
        for (key, value) in map {
            out.serialize_entry(Bytes::new(key), Bytes::new(value))?;
        }
        out.end()
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<Vec<u8>, Vec<u8>>, D::Error> {
        d.deserialize_map(MapVisitor)
    }

    struct MapVisitor;

    impl<'de> Visitor<'de> for MapVisitor {
        type Value = BTreeMap<Vec<u8>, Vec<u8>>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a map of byte strings")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
            let mut map = BTreeMap::new();
            while let Some((key, value)) = access.next_entry::<ByteBuf, ByteBuf>()? {
                map.insert(key.into_vec(), value.into_vec());
            }
            Ok(map)
        }
    }
}

/// A sequence of `T`, with no size hint trusted for allocation (the length comes from the wire).
struct SeqOf<T>(PhantomData<T>);

impl<'de, T: serde::Deserialize<'de>> Visitor<'de> for SeqOf<T> {
    type Value = Vec<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a sequence")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = access.next_element()? {
            items.push(item);
        }
        Ok(items)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Serialize};

    /// The same data as plain sequences of bytes, the way serde writes `Vec<u8>` by default.
    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Plain {
        one: Vec<u8>,
        maybe: Option<Vec<u8>>,
        list: Vec<Vec<u8>>,
        pairs: Vec<(Vec<u8>, Vec<u8>)>,
        map: BTreeMap<Vec<u8>, Vec<u8>>,
    }

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Blocks {
        #[serde(with = "serde_bytes")]
        one: Vec<u8>,
        #[serde(with = "serde_bytes")]
        maybe: Option<Vec<u8>>,
        #[serde(with = "super::list")]
        list: Vec<Vec<u8>>,
        #[serde(with = "super::pairs")]
        pairs: Vec<(Vec<u8>, Vec<u8>)>,
        #[serde(with = "super::map")]
        map: BTreeMap<Vec<u8>, Vec<u8>>,
    }

    #[test]
    fn byte_blocks_encode_exactly_as_plain_byte_sequences_and_read_back_either_way() {
        let map: BTreeMap<Vec<u8>, Vec<u8>> =
            [(b"a".to_vec(), vec![0; 300]), (b"b".to_vec(), vec![])].into();
        let plain = Plain {
            one: (0..=255).collect(),
            maybe: Some(vec![7; 200]),
            list: vec![vec![], vec![1, 2, 3]],
            pairs: vec![(b"k".to_vec(), vec![9; 130])],
            map: map.clone(),
        };
        let blocks = Blocks {
            one: plain.one.clone(),
            maybe: plain.maybe.clone(),
            list: plain.list.clone(),
            pairs: plain.pairs.clone(),
            map,
        };
        let a = postcard::to_allocvec(&plain).unwrap();
        let b = postcard::to_allocvec(&blocks).unwrap();
        assert_eq!(a, b);
        assert_eq!(postcard::from_bytes::<Blocks>(&a).unwrap(), blocks);
        assert_eq!(postcard::from_bytes::<Plain>(&b).unwrap(), plain);
    }
}

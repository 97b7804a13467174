//! The data structs' deserialization: one pass, known fields typed,
//! unknown ones kept in `other`.
//!
//! `#[serde(flatten)]` would keep unknown fields too, but it buffers every
//! field of every event before typing it, which costs the parse path more
//! than it gives. The visitor [`data_struct!`] writes matches the keys
//! borrowed from the input and allocates only for a field it does not know.

use std::fmt;

use serde::Deserializer;
use serde::de::{self, Visitor};

/// A key of a data object, borrowed from the input when it can be.
pub(super) enum Key<'de> {
    Borrowed(&'de str),
    Owned(String),
}

impl Key<'_> {
    pub(super) fn as_str(&self) -> &str {
        match self {
            Self::Borrowed(s) => s,
            Self::Owned(s) => s,
        }
    }

    pub(super) fn into_string(self) -> String {
        match self {
            Self::Borrowed(s) => s.to_owned(),
            Self::Owned(s) => s,
        }
    }
}

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key::Borrowed(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key::Owned(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key::Owned(v))
            }
        }
        deserializer.deserialize_identifier(KeyVisitor)
    }
}

/// Declares a data struct: its required fields (refused when missing), its
/// optional ones (`None` when missing or `null`), and `other`, the fields it
/// does not know, kept as sent. Serializing writes the fields back under
/// their JSON names, `other` included, so a round trip gives back what ALM
/// sent.
macro_rules! data_struct {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$rmeta:meta])* $rjson:literal => $rfield:ident : $rty:ty, )*
            ;
            $( $(#[$ometa:meta])* $ojson:literal => $ofield:ident : Option<$oty:ty>, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(::serde::Serialize)]
        #[non_exhaustive]
        pub struct $name {
            $(
                $(#[$rmeta])*
                #[serde(rename = $rjson)]
                pub $rfield: $rty,
            )*
            $(
                $(#[$ometa])*
                #[serde(rename = $ojson, skip_serializing_if = "Option::is_none")]
                pub $ofield: Option<$oty>,
            )*
            /// The fields this crate does not know, as sent: ALM may add
            /// fields, and serializing the event gives them back.
            #[serde(flatten)]
            pub other: ::serde_json::Map<String, ::serde_json::Value>,
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                use ::serde::de;
                struct DataVisitor;
                impl<'de> de::Visitor<'de> for DataVisitor {
                    type Value = $name;
                    fn expecting(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                        f.write_str(concat!("the data of ", stringify!($name), " (an object)"))
                    }
                    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<$name, A::Error> {
                        $( let mut $rfield: Option<$rty> = None; )*
                        $( let mut $ofield: Option<Option<$oty>> = None; )*
                        let mut other = ::serde_json::Map::new();
                        while let Some(key) = map.next_key::<$crate::event::fields::Key<'de>>()? {
                            match key.as_str() {
                                $( $rjson => {
                                    if $rfield.is_some() {
                                        return Err(de::Error::duplicate_field($rjson));
                                    }
                                    $rfield = Some(map.next_value()?);
                                } )*
                                $( $ojson => {
                                    if $ofield.is_some() {
                                        return Err(de::Error::duplicate_field($ojson));
                                    }
                                    $ofield = Some(map.next_value()?);
                                } )*
                                _ => {
                                    let value: ::serde_json::Value = map.next_value()?;
                                    if other.insert(key.into_string(), value).is_some() {
                                        return Err(de::Error::custom("duplicate field"));
                                    }
                                }
                            }
                        }
                        Ok($name {
                            $( $rfield: $rfield.ok_or_else(|| de::Error::missing_field($rjson))?, )*
                            $( $ofield: $ofield.flatten(), )*
                            other,
                        })
                    }
                }
                deserializer.deserialize_map(DataVisitor)
            }
        }
    };
}
pub(super) use data_struct;

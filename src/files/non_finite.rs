//! Finds every non-finite number (NaN, ±∞) in a value about to be written
//! as JSON, by walking it with a serde serializer that writes nothing.
//!
//! JSON has no NaN or ∞: serde_json writes them as `null`, which a reader
//! cannot tell from "absent". [`super::write_json`] asks this module where
//! such numbers are and lists them in the file's `warnings`, so a silently
//! wrong number cannot pass as a missing one.

use serde::Serialize;
use serde::ser::{self, Impossible};
use std::fmt;

/// The paths (`runs[2].exact.g`) of every non-finite `f32`/`f64` in
/// `value`, in serialisation order.
pub fn paths<T: Serialize + ?Sized>(value: &T) -> Vec<String> {
    let mut w = Walker::default();
    // The walker never fails; a value's own Serialize impl might (e.g. a
    // map with non-string keys): then what was found so far is returned.
    let _ = value.serialize(&mut w);
    w.found
}

#[derive(Default)]
struct Walker {
    path: String,
    found: Vec<String>,
}

impl Walker {
    fn number(&mut self, v: f64) {
        if !v.is_finite() {
            let p = self.path.strip_prefix('.').unwrap_or(&self.path);
            self.found.push(if p.is_empty() {
                "(the value itself)".into()
            } else {
                p.into()
            });
        }
    }

    fn nested<T: Serialize + ?Sized>(&mut self, segment: fmt::Arguments, v: &T) -> Result<(), Error> {
        let len = self.path.len();
        fmt::write(&mut self.path, segment).expect("writing to a String");
        let r = v.serialize(&mut *self);
        self.path.truncate(len);
        r
    }
}

#[derive(Debug)]
pub struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl ser::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error(msg.to_string())
    }
}

/// Serialising a seq, map or struct: the element index or the key so far.
pub struct Compound<'a> {
    w: &'a mut Walker,
    index: usize,
    key: String,
}

/// Serializer methods for values that hold no number.
macro_rules! ignore {
    ($($method:ident: $t:ty),*) => {$(
        fn $method(self, _: $t) -> Result<(), Error> {
            Ok(())
        }
    )*};
}

impl<'a> ser::Serializer for &'a mut Walker {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Compound<'a>;
    type SerializeTuple = Compound<'a>;
    type SerializeTupleStruct = Compound<'a>;
    type SerializeTupleVariant = Compound<'a>;
    type SerializeMap = Compound<'a>;
    type SerializeStruct = Compound<'a>;
    type SerializeStructVariant = Compound<'a>;

    ignore!(
        serialize_bool: bool, serialize_i8: i8, serialize_i16: i16, serialize_i32: i32, serialize_i64: i64,
        serialize_u8: u8, serialize_u16: u16, serialize_u32: u32, serialize_u64: u64
    );
    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        self.number(v as f64);
        Ok(())
    }
    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        self.number(v);
        Ok(())
    }
    ignore!(serialize_char: char, serialize_str: &str, serialize_bytes: &[u8]);
    fn serialize_none(self) -> Result<(), Error> {
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<(), Error> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Error> {
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Error> {
        Ok(())
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, _: &'static str) -> Result<(), Error> {
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, v: &T) -> Result<(), Error> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        v: &T,
    ) -> Result<(), Error> {
        self.nested(format_args!(".{variant}"), v)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Compound<'a>, Error> {
        Ok(self.compound())
    }
    fn serialize_tuple(self, _: usize) -> Result<Compound<'a>, Error> {
        Ok(self.compound())
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Compound<'a>, Error> {
        Ok(self.compound())
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Compound<'a>, Error> {
        Ok(self.compound())
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Compound<'a>, Error> {
        Ok(self.compound())
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Compound<'a>, Error> {
        Ok(self.compound())
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Compound<'a>, Error> {
        Ok(self.compound())
    }
}

impl Walker {
    fn compound(&mut self) -> Compound<'_> {
        Compound {
            w: self,
            index: 0,
            key: String::new(),
        }
    }
}

impl Compound<'_> {
    fn element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        let i = self.index;
        self.index += 1;
        self.w.nested(format_args!("[{i}]"), v)
    }
}

macro_rules! elements {
    ($($trait:ident :: $method:ident),*) => {$(
        impl ser::$trait for Compound<'_> {
            type Ok = ();
            type Error = Error;
            fn $method<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
                self.element(v)
            }
            fn end(self) -> Result<(), Error> {
                Ok(())
            }
        }
    )*};
}

elements!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

impl ser::SerializeMap for Compound<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        self.key = key.serialize(KeyName)?;
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        let key = std::mem::take(&mut self.key);
        self.w.nested(format_args!(".{key}"), v)
    }
    fn end(self) -> Result<(), Error> {
        Ok(())
    }
}

macro_rules! fields {
    ($($trait:ident),*) => {$(
        impl ser::$trait for Compound<'_> {
            type Ok = ();
            type Error = Error;
            fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, v: &T) -> Result<(), Error> {
                self.w.nested(format_args!(".{key}"), v)
            }
            fn end(self) -> Result<(), Error> {
                Ok(())
            }
        }
    )*};
}

fields!(SerializeStruct, SerializeStructVariant);

/// A map key as text (JSON keys are strings; numbers and unit variants are
/// written as their text, as serde_json does).
struct KeyName;

macro_rules! key_as_text {
    ($($method:ident: $t:ty),*) => {$(
        fn $method(self, v: $t) -> Result<String, Error> {
            Ok(v.to_string())
        }
    )*};
}

impl ser::Serializer for KeyName {
    type Ok = String;
    type Error = Error;
    type SerializeSeq = Impossible<String, Error>;
    type SerializeTuple = Impossible<String, Error>;
    type SerializeTupleStruct = Impossible<String, Error>;
    type SerializeTupleVariant = Impossible<String, Error>;
    type SerializeMap = Impossible<String, Error>;
    type SerializeStruct = Impossible<String, Error>;
    type SerializeStructVariant = Impossible<String, Error>;

    key_as_text!(
        serialize_bool: bool, serialize_i8: i8, serialize_i16: i16, serialize_i32: i32, serialize_i64: i64,
        serialize_u8: u8, serialize_u16: u16, serialize_u32: u32, serialize_u64: u64, serialize_f32: f32,
        serialize_f64: f64, serialize_char: char, serialize_str: &str
    );
    fn serialize_bytes(self, _: &[u8]) -> Result<String, Error> {
        Ok("(bytes)".into())
    }
    fn serialize_none(self) -> Result<String, Error> {
        Ok("null".into())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<String, Error> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<String, Error> {
        Ok("null".into())
    }
    fn serialize_unit_struct(self, name: &'static str) -> Result<String, Error> {
        Ok(name.into())
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Result<String, Error> {
        Ok(variant.into())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, v: &T) -> Result<String, Error> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: &T,
    ) -> Result<String, Error> {
        Ok(variant.into())
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Error> {
        Err(ser::Error::custom("a sequence as a map key"))
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Error> {
        Err(ser::Error::custom("a tuple as a map key"))
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeTupleStruct, Error> {
        Err(ser::Error::custom("a tuple as a map key"))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        Err(ser::Error::custom("a tuple as a map key"))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Error> {
        Err(ser::Error::custom("a map as a map key"))
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, Error> {
        Err(ser::Error::custom("a struct as a map key"))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        Err(ser::Error::custom("a struct as a map key"))
    }
}

#[cfg(test)]
mod tests {
    use super::paths;
    use std::collections::BTreeMap;

    #[derive(serde::Serialize)]
    struct Run {
        g: f64,
        curve: Vec<(u64, f32)>,
        exact: Option<Exact>,
        by_lambda: BTreeMap<String, f64>,
        kind: Kind,
    }

    #[derive(serde::Serialize)]
    struct Exact {
        g: f64,
    }

    #[derive(serde::Serialize)]
    enum Kind {
        Fit { loss: f64 },
    }

    #[test]
    fn every_non_finite_number_is_found_with_its_path() {
        let runs = vec![
            Run {
                g: 1.0,
                curve: vec![(0, 0.5), (1, 1.0)],
                exact: Some(Exact { g: 0.3 }),
                by_lambda: [("0.1".to_string(), 2.0)].into(),
                kind: Kind::Fit { loss: 0.0 },
            },
            Run {
                g: f64::NAN,
                curve: vec![(0, 0.5), (1, f32::INFINITY)],
                exact: Some(Exact { g: f64::NEG_INFINITY }),
                by_lambda: [("0.1".to_string(), 2.0), ("1".to_string(), f64::NAN)].into(),
                kind: Kind::Fit { loss: f64::NAN },
            },
        ];
        assert_eq!(
            paths(&runs),
            [
                "[1].g",
                "[1].curve[1][1]",
                "[1].exact.g",
                "[1].by_lambda.1",
                "[1].kind.loss"
            ]
        );
        assert!(paths(&runs[0]).is_empty());
        assert_eq!(paths(&f64::NAN), ["(the value itself)"]);
        assert!(paths(&Option::<f64>::None).is_empty());
    }
}

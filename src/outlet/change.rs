//! A change of a dynamic connection's streams, as one node asks it of the node holding the
//! connection (see `Connections::ask_holder`), and the holder's answer, in bytes and back.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use super::journal::{read_spec, spec_bytes};
use super::{Start, StreamSpec};
use crate::wire::envelope::ErrorInfo;

/// What a client asked of a connection's streams.
#[derive(Debug)]
pub enum Change {
    /// A stream, checked against the client's key where the request came in.
    Add(Box<StreamSpec>),
    /// The stream of this name.
    Remove(String),
    /// Its streams.
    List,
}

/// What carrying out a change gave: the JSON the client is answered with, or why not.
pub type Answer = Result<Value, ErrorInfo>;

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
enum Wire<'a> {
    Add {
        #[serde(borrow)]
        spec: &'a RawValue,
        rewind: Option<u64>,
    },
    Remove(String),
    List,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
enum WireAnswer {
    Done(Value),
    Refused { code: u32, message: String },
}

impl Change {
    pub fn to_bytes(&self) -> Vec<u8> {
        let spec;
        let wire = match self {
            Change::Add(stream) => {
                spec = spec_bytes(stream);
                let rewind = match stream.start {
                    Start::Rewind(n) => Some(n),
                    _ => None,
                };
                let spec = serde_json::from_slice(&spec).expect("a stream is JSON");
                Wire::Add { spec, rewind }
            }
            Change::Remove(name) => Wire::Remove(name.clone()),
            Change::List => Wire::List,
        };
        serde_json::to_vec(&wire).expect("a change always serializes")
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Change, String> {
        let wire: Wire = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        Ok(match wire {
            Wire::Add { spec, rewind } => {
                let mut stream = read_spec(spec.get().as_bytes())?;
                stream.start = rewind.map_or(Start::Live, Start::Rewind);
                Change::Add(Box::new(stream))
            }
            Wire::Remove(name) => Change::Remove(name),
            Wire::List => Change::List,
        })
    }
}

pub fn answer_bytes(answer: &Answer) -> Vec<u8> {
    let wire = match answer {
        Ok(value) => WireAnswer::Done(value.clone()),
        Err(e) => WireAnswer::Refused {
            code: e.code,
            message: e.message.clone(),
        },
    };
    serde_json::to_vec(&wire).expect("an answer always serializes")
}

pub fn read_answer(bytes: &[u8]) -> Result<Answer, String> {
    let wire: WireAnswer = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    Ok(match wire {
        WireAnswer::Done(value) => Ok(value),
        WireAnswer::Refused { code, message } => Err(ErrorInfo::new(code, message)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::envelope::codes;

    #[test]
    fn changes_and_answers_read_back() {
        let stream = StreamSpec::log("prices".into(), Start::Rewind(3));
        let Change::Add(back) =
            Change::from_bytes(&Change::Add(Box::new(stream)).to_bytes()).unwrap()
        else {
            panic!("not an add");
        };
        assert_eq!(
            (back.name.as_str(), back.start),
            ("prices", Start::Rewind(3))
        );
        let remove = Change::from_bytes(&Change::Remove("a".into()).to_bytes()).unwrap();
        assert!(matches!(remove, Change::Remove(name) if name == "a"));
        let refused: Answer = Err(ErrorInfo::new(codes::NOT_FOUND, "gone"));
        let back = read_answer(&answer_bytes(&refused)).unwrap().unwrap_err();
        assert_eq!(
            (back.code, back.message.as_str()),
            (codes::NOT_FOUND, "gone")
        );
        assert!(Change::from_bytes(b"{").is_err());
    }
}

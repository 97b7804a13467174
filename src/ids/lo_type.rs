//! The kind of a learning object (`loType`), as sent and without its
//! spelling.

use std::str::FromStr;

use super::IdError;

/// The kind of learning object (`loType`).
///
/// ALM spells a learning program (a learning path) two ways,
/// `learningProgram` and `learning_program`; both are
/// [`LoType::LearningProgram`], which keeps the spelling that was sent beside
/// it (as [`Timestamp`](crate::Timestamp) keeps its
/// [`TimeFormat`](crate::TimeFormat)), so serializing gives back what was
/// received. Two `LoType`s are equal when they name the same type, whatever
/// the spelling. Unknown types are kept, never rejected.
///
/// ```
/// use alm_webhooks::{LoKind, LoType, ProgramSpelling};
/// let a: LoType = "learningProgram".parse().unwrap();
/// let b: LoType = "learning_program".parse().unwrap();
/// assert_eq!(a, b);
/// assert!(matches!(b, LoType::LearningProgram(ProgramSpelling::Underscore)));
/// assert_eq!(b.as_str(), "learning_program");
/// assert_eq!(serde_json::to_string(&b).unwrap(), r#""learning_program""#);
/// assert_eq!(a.kind(), LoKind::LearningProgram);
///
/// match "jobAid".parse::<LoType>().unwrap() {
///     LoType::Course => println!("a course"),
///     LoType::LearningProgram(_) => println!("a learning path"),
///     LoType::Certification => println!("a certification"),
///     other => assert_eq!(other.as_str(), "jobAid"),
/// }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum LoType {
    /// `course`.
    Course,
    /// A learning program (a learning path, in ALM's interface), with the
    /// spelling it was sent in.
    LearningProgram(ProgramSpelling),
    /// `certification`.
    Certification,
    /// Any other type, kept as sent.
    Unknown(Box<str>),
}

/// How a [`LoType::LearningProgram`] was spelled: ALM sends both.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProgramSpelling {
    /// `learningProgram`, the documented spelling.
    #[default]
    CamelCase,
    /// `learning_program`, seen in some of ALM's samples.
    Underscore,
}

/// The kind of a learning object, without the spelling or the text of an
/// unknown type: what a handler matches on (see [`Event::lo_kind`](crate::Event::lo_kind)).
///
/// ```
/// use alm_webhooks::{LoId, LoKind};
/// let id: LoId = "learning_program:12345".parse().unwrap();
/// assert_eq!(id.lo_type().kind(), LoKind::LearningProgram);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LoKind {
    /// A course.
    Course,
    /// A learning program (learning path), in either spelling.
    LearningProgram,
    /// A certification.
    Certification,
    /// A type this crate does not know.
    Other,
}

impl LoType {
    /// The type as it was received.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Course => "course",
            Self::LearningProgram(ProgramSpelling::CamelCase) => "learningProgram",
            Self::LearningProgram(ProgramSpelling::Underscore) => "learning_program",
            Self::Certification => "certification",
            Self::Unknown(s) => s,
        }
    }

    /// Whether this is a learning program (learning path), in either spelling.
    pub fn is_learning_program(&self) -> bool {
        matches!(self, Self::LearningProgram(_))
    }

    /// The kind, without the spelling.
    pub fn kind(&self) -> LoKind {
        match self {
            Self::Course => LoKind::Course,
            Self::LearningProgram(_) => LoKind::LearningProgram,
            Self::Certification => LoKind::Certification,
            Self::Unknown(_) => LoKind::Other,
        }
    }

    fn canonical(&self) -> &str {
        match self {
            Self::LearningProgram(_) => "learningProgram",
            other => other.as_str(),
        }
    }
}

impl PartialEq for LoType {
    fn eq(&self, other: &Self) -> bool {
        self.canonical() == other.canonical()
    }
}

impl Eq for LoType {}

impl std::hash::Hash for LoType {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.canonical().hash(state);
    }
}

impl FromStr for LoType {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "course" => Self::Course,
            "learningProgram" => Self::LearningProgram(ProgramSpelling::CamelCase),
            "learning_program" => Self::LearningProgram(ProgramSpelling::Underscore),
            "certification" => Self::Certification,
            "" => return Err(IdError::new("loType", "must not be empty")),
            other => Self::Unknown(other.into()),
        })
    }
}

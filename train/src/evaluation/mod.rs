//! `evaluate`'s reports: the feature comparison of generated and real windows ([`oa`]), and
//! how samples fit the prompts and chords they were given ([`prompts`]).

pub mod oa;
pub mod prompts;

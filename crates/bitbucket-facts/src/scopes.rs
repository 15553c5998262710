//! Scope vocabularies and the algebra over them.
//!
//! A [`Vocabulary`] is the fixed list of scopes a provider knows, plus which scope implies which.
//! A [`ScopeSet`] is a set of scopes from one vocabulary, stored as a bit set so that checks on
//! hot paths (the simulator's REST scope check, the broker's token reads) cost a few instructions.

use std::fmt;

/// The scopes one provider knows and how they imply each other.
#[derive(Debug)]
pub struct Vocabulary {
    /// Name used in messages, e.g. `bitbucket-cloud`.
    pub provider: &'static str,
    /// Every scope, in the order the provider documents them. At most 64.
    pub names: &'static [&'static str],
    /// `(scope, scopes it implies)`. Implication is transitive.
    pub implies: &'static [(&'static str, &'static [&'static str])],
    /// Scopes that existed once, with a hint for the user.
    pub removed: &'static [(&'static str, &'static str)],
}

/// A scope name that the vocabulary does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    #[error("unknown {provider} scope `{scope}`; known scopes: {known}")]
    Unknown {
        provider: &'static str,
        scope: String,
        known: String,
    },
    #[error("the {provider} scope `{scope}` no longer exists: {hint}")]
    Removed {
        provider: &'static str,
        scope: String,
        hint: &'static str,
    },
}

impl Vocabulary {
    /// The bit of one scope, or an error naming it.
    pub fn bit(&'static self, name: &str) -> Result<u64, ScopeError> {
        if let Some(index) = self.names.iter().position(|known| *known == name) {
            return Ok(1 << index);
        }
        if let Some((_, hint)) = self.removed.iter().find(|(old, _)| *old == name) {
            return Err(ScopeError::Removed {
                provider: self.provider,
                scope: name.to_owned(),
                hint,
            });
        }
        Err(ScopeError::Unknown {
            provider: self.provider,
            scope: name.to_owned(),
            known: self.names.join(", "),
        })
    }

    /// The empty set of this vocabulary.
    pub fn empty(&'static self) -> ScopeSet {
        ScopeSet {
            vocab: self,
            bits: 0,
        }
    }

    /// Parses scopes separated by spaces and/or commas (both forms appear in Bitbucket's answers).
    pub fn parse(&'static self, text: &str) -> Result<ScopeSet, ScopeError> {
        self.from_names(text.split([' ', ',']).filter(|part| !part.is_empty()))
    }

    /// Builds a set from scope names.
    pub fn from_names<'a>(
        &'static self,
        names: impl IntoIterator<Item = &'a str>,
    ) -> Result<ScopeSet, ScopeError> {
        let mut bits = 0;
        for name in names {
            bits |= self.bit(name.trim())?;
        }
        Ok(ScopeSet { vocab: self, bits })
    }

    fn implied_bits(&'static self, bits: u64) -> u64 {
        let mut closed = bits;
        loop {
            let before = closed;
            for (scope, implied) in self.implies {
                let Ok(bit) = self.bit(scope) else { continue };
                if closed & bit != 0 {
                    for name in *implied {
                        closed |= self.bit(name).unwrap_or(0);
                    }
                }
            }
            if closed == before {
                return closed;
            }
        }
    }
}

/// A set of scopes of one vocabulary.
#[derive(Clone, Copy)]
pub struct ScopeSet {
    vocab: &'static Vocabulary,
    bits: u64,
}

impl ScopeSet {
    pub fn vocabulary(&self) -> &'static Vocabulary {
        self.vocab
    }

    pub fn is_empty(&self) -> bool {
        self.bits == 0
    }

    pub fn contains(&self, name: &str) -> bool {
        self.vocab.bit(name).is_ok_and(|bit| self.bits & bit != 0)
    }

    /// This set plus everything its scopes imply.
    pub fn closure(&self) -> ScopeSet {
        ScopeSet {
            vocab: self.vocab,
            bits: self.vocab.implied_bits(self.bits),
        }
    }

    /// Whether a token holding `self` may do what needs `required`.
    pub fn satisfies(&self, required: &ScopeSet) -> bool {
        self.missing(required).is_empty()
    }

    /// The scopes of `required` that `self` neither holds nor implies.
    pub fn missing(&self, required: &ScopeSet) -> ScopeSet {
        let have = self.vocab.implied_bits(self.bits);
        ScopeSet {
            vocab: self.vocab,
            bits: required.bits & !have,
        }
    }

    pub fn union(&self, other: &ScopeSet) -> ScopeSet {
        ScopeSet {
            vocab: self.vocab,
            bits: self.bits | other.bits,
        }
    }

    /// The smallest subset whose closure equals this set's closure: the scopes a person has to
    /// ask for, the rest following by implication.
    pub fn minimal(&self) -> ScopeSet {
        let mut bits = self.bits;
        for index in 0..self.vocab.names.len() {
            let bit = 1u64 << index;
            if bits & bit == 0 {
                continue;
            }
            let others = bits & !bit;
            if self.vocab.implied_bits(others) & bit != 0 {
                bits = others;
            }
        }
        ScopeSet {
            vocab: self.vocab,
            bits,
        }
    }

    /// Scope names in the vocabulary's documented order.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.vocab
            .names
            .iter()
            .enumerate()
            .filter(|(index, _)| self.bits & (1 << index) != 0)
            .map(|(_, name)| *name)
    }

    pub fn to_vec(&self) -> Vec<String> {
        self.names().map(str::to_owned).collect()
    }
}

impl PartialEq for ScopeSet {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self.vocab, other.vocab) && self.bits == other.bits
    }
}

impl Eq for ScopeSet {}

/// Space-separated, the form Bitbucket uses in token responses.
impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for name in self.names() {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(name)?;
            first = false;
        }
        Ok(())
    }
}

impl fmt::Debug for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.names()).finish()
    }
}

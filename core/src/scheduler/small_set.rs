//! A set of small ids that costs no allocation for zero or one member — most tasks
//! are wanted by one client and held by one worker.

/// A set of `Copy` ids, inline up to one member.
#[derive(Debug, Clone, Default)]
pub enum SmallSet<T> {
    /// No members.
    #[default]
    Empty,
    /// One member.
    One(T),
    /// Two or more members.
    Many(Box<Vec<T>>),
}

impl<T: Copy + PartialEq> SmallSet<T> {
    /// Adds `item`; returns whether it was new.
    pub fn insert(&mut self, item: T) -> bool {
        match self {
            SmallSet::Empty => *self = SmallSet::One(item),
            SmallSet::One(one) if *one == item => return false,
            SmallSet::One(one) => *self = SmallSet::Many(Box::new(vec![*one, item])),
            SmallSet::Many(many) if many.contains(&item) => return false,
            SmallSet::Many(many) => many.push(item),
        }
        true
    }

    /// Removes `item`; returns whether it was there.
    pub fn remove(&mut self, item: T) -> bool {
        match self {
            SmallSet::One(one) if *one == item => *self = SmallSet::Empty,
            SmallSet::Many(many) => {
                let Some(at) = many.iter().position(|x| *x == item) else {
                    return false;
                };
                many.swap_remove(at);
                if many.len() == 1 {
                    *self = SmallSet::One(many[0]);
                }
            }
            _ => return false,
        }
        true
    }

    /// Whether `item` is a member.
    pub fn contains(&self, item: T) -> bool {
        self.as_slice().contains(&item)
    }

    /// Whether there are no members.
    pub fn is_empty(&self) -> bool {
        matches!(self, SmallSet::Empty)
    }

    /// The members.
    pub fn as_slice(&self) -> &[T] {
        match self {
            SmallSet::Empty => &[],
            SmallSet::One(one) => std::slice::from_ref(one),
            SmallSet::Many(many) => many,
        }
    }

    /// Removes every member.
    pub fn clear(&mut self) {
        *self = SmallSet::Empty;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_remove_contains() {
        let mut set = SmallSet::default();
        assert!(set.insert(1));
        assert!(!set.insert(1));
        assert!(set.insert(2));
        assert!(set.contains(2));
        assert!(set.remove(1));
        assert_eq!(set.as_slice(), &[2]);
        assert!(set.remove(2));
        assert!(set.is_empty());
        assert!(!set.remove(3));
    }
}

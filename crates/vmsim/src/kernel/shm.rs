//! Shared memory objects: the only way one process sees another's bytes.
//!
//! A shared object owns its pages (one reference on each frame), indexed by
//! page number within the object. VMAs of kind `AnonShared` name an object
//! and an offset; a fault in such a VMA finds or creates the object's page,
//! so every process attached sees the same frame.

use serde::{Deserialize, Serialize};

use crate::addr::Pfn;

/// Identifies a shared object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ShmId(u32);

impl ShmId {
    /// Test hook: the id `raw` (a forged checkpoint's).
    #[cfg(test)]
    pub(crate) fn forge(raw: u32) -> Self {
        Self(raw)
    }

    /// The raw id.
    #[must_use]
    pub fn as_u32(self) -> u32 {
        self.0
    }
}

/// One shared object.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SharedObject {
    /// Its pages, `None` until first touched.
    pub pages: Vec<Option<Pfn>>,
    /// How many VMAs refer to it.
    pub attaches: u32,
    /// Whether it goes away with its last attachment (anonymous MAP_SHARED
    /// memory) or lives until removed (a named segment, like System V shm).
    pub anonymous: bool,
    /// A named segment marked for removal (IPC_RMID): goes with its last attachment.
    pub removed: bool,
}

/// All shared objects of the kernel.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ShmTable {
    objects: Vec<Option<SharedObject>>,
}

impl ShmTable {
    /// Creates an object of `pages` pages.
    pub fn create(&mut self, pages: u64, anonymous: bool) -> ShmId {
        let obj = SharedObject {
            pages: vec![None; pages as usize],
            attaches: 0,
            anonymous,
            removed: false,
        };
        if let Some(i) = self.objects.iter().position(Option::is_none) {
            self.objects[i] = Some(obj);
            ShmId(i as u32)
        } else {
            self.objects.push(Some(obj));
            ShmId(self.objects.len() as u32 - 1)
        }
    }

    /// The object, if it exists.
    #[must_use]
    pub fn get(&self, id: ShmId) -> Option<&SharedObject> {
        self.objects.get(id.0 as usize)?.as_ref()
    }

    /// The object, mutably.
    pub fn get_mut(&mut self, id: ShmId) -> Option<&mut SharedObject> {
        self.objects.get_mut(id.0 as usize)?.as_mut()
    }

    /// Whether the object should be destroyed now (no attachment and anonymous or removed).
    #[must_use]
    pub fn is_dead(&self, id: ShmId) -> bool {
        self.get(id)
            .is_some_and(|o| o.attaches == 0 && (o.anonymous || o.removed))
    }

    /// Takes the object out of the table, returning its pages for the caller to release.
    pub fn destroy(&mut self, id: ShmId) -> Vec<Pfn> {
        self.objects
            .get_mut(id.0 as usize)
            .and_then(Option::take)
            .map(|o| o.pages.into_iter().flatten().collect())
            .unwrap_or_default()
    }

    /// Every live object.
    pub fn iter(&self) -> impl Iterator<Item = (ShmId, &SharedObject)> {
        self.objects
            .iter()
            .enumerate()
            .filter_map(|(i, o)| o.as_ref().map(|o| (ShmId(i as u32), o)))
    }
}

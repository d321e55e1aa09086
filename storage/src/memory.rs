//! An in-memory device that injects the storage fault atlas: lost unsynced writes and writes
//! torn at sector granularity on a crash; at rest, flipped bits, misdirected writes and
//! sectors that cannot be read. The simulator runs the log engine on it; the engine's tests
//! use it with no faults.
//!
//! Faults at rest strike the bytes of earlier synced writes (their extents). A misdirected
//! write is one of them having landed elsewhere — at the start of another write (a record
//! boundary) or inside one — while its own place kept what it held before: zeros.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::PathBuf;

use crate::device::{segment_name, Device, DeviceError};
use crate::format::SECTOR_BYTES;

/// Draws a number below its argument (the caller's seeded generator).
pub type Pick<'a> = &'a mut dyn FnMut(usize) -> usize;

/// Bytes of one segment written by one write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Extent {
    segment: u64,
    offset: usize,
    len: usize,
}

impl Extent {
    fn end(&self) -> usize {
        self.offset + self.len
    }

    fn overlaps(&self, other: &Extent) -> bool {
        self.segment == other.segment && self.offset < other.end() && other.offset < self.end()
    }

    /// The sectors it touches, counted from the start of its segment.
    fn sectors(&self) -> std::ops::Range<usize> {
        self.offset / SECTOR_BYTES..self.end().div_ceil(SECTOR_BYTES)
    }
}

/// A write not yet synced, with the bytes it replaced (for a crash to put back).
#[derive(Clone, Debug)]
struct Unsynced {
    extent: Extent,
    replaced: Vec<u8>,
}

#[derive(Clone, Debug, Default)]
pub struct MemoryDevice {
    segments: BTreeMap<u64, Vec<u8>>,
    /// Writes since the last sync of their segment, oldest first.
    unsynced: Vec<Unsynced>,
    /// Synced writes on segments that still exist: where faults at rest strike. Bounded by
    /// the segments' bytes, since every extent covers at least one byte of one.
    extents: Vec<Extent>,
    /// Sectors that fail to read, by segment and sector number.
    unreadable: BTreeSet<(u64, usize)>,
}

impl MemoryDevice {
    pub fn new() -> MemoryDevice {
        MemoryDevice::default()
    }

    fn segment(&mut self, index: u64) -> Result<&mut Vec<u8>, DeviceError> {
        self.segments.get_mut(&index).ok_or_else(|| {
            let missing = io::Error::new(io::ErrorKind::NotFound, "no such segment");
            DeviceError::Io(missing)
        })
    }

    /// How many sectors each write not yet synced touches, oldest first.
    pub fn unsynced_sectors(&self) -> Vec<usize> {
        self.unsynced
            .iter()
            .map(|w| w.extent.sectors().len())
            .collect()
    }

    /// The process died: of the sectors the unsynced writes touch, in the order they were
    /// written, the first `kept_sectors` reached the medium; the rest of those writes is lost
    /// (a write cut inside is torn at a sector boundary).
    pub fn crash(&mut self, kept_sectors: usize) {
        let mut left = kept_sectors;
        let mut kept_ends = Vec::with_capacity(self.unsynced.len());
        for write in &self.unsynced {
            let extent = write.extent;
            let sectors = extent.sectors();
            let kept = left.min(sectors.len());
            left -= kept;
            let kept_end =
                ((sectors.start + kept) * SECTOR_BYTES).clamp(extent.offset, extent.end());
            assert!(
                kept == sectors.len() || kept_end < extent.end(),
                "a cut write loses bytes"
            );
            kept_ends.push(kept_end);
        }
        // Newest first, so where writes overlap the oldest bytes are what is left.
        for (write, kept_end) in self.unsynced.iter().zip(&kept_ends).rev() {
            let extent = write.extent;
            let bytes = self
                .segments
                .get_mut(&extent.segment)
                .expect("written segment exists");
            let from = kept_end - extent.offset;
            bytes[*kept_end..extent.end()].copy_from_slice(&write.replaced[from..]);
        }
        for (write, kept_end) in self.unsynced.drain(..).zip(kept_ends) {
            let len = kept_end - write.extent.offset;
            if len > 0 {
                self.extents.push(Extent {
                    len,
                    ..write.extent
                });
            }
        }
        assert!(
            self.unsynced.is_empty(),
            "nothing is in flight after a crash"
        );
    }

    /// Flips one bit of a synced write. False when nothing was written yet.
    pub fn flip_bit(&mut self, pick: Pick) -> bool {
        if self.extents.is_empty() {
            return false;
        }
        let extent = self.extents[pick(self.extents.len())];
        let bit = pick(extent.len * 8);
        let bytes = self
            .segments
            .get_mut(&extent.segment)
            .expect("extents are of segments");
        assert!(
            extent.end() <= bytes.len(),
            "an extent lies within its segment"
        );
        bytes[extent.offset + bit / 8] ^= 1 << (bit % 8);
        true
    }

    /// A synced write turns out to have landed elsewhere: at the start of another write or
    /// inside one; its own place holds zeros. False when there was no place for it.
    pub fn misdirect(&mut self, pick: Pick) -> bool {
        let n = self.extents.len();
        if n < 2 {
            return false;
        }
        let source = self.extents[pick(n)];
        let other = self.extents[pick(n)];
        let at = if pick(2) == 0 {
            other.offset
        } else {
            other.offset + pick(other.len)
        };
        let size = self.segments[&other.segment].len();
        assert!(at < size, "a misdirected write lands within a segment");
        let len = source.len.min(size - at);
        let target = Extent {
            segment: other.segment,
            offset: at,
            len,
        };
        if target.overlaps(&source) || len == 0 {
            return false;
        }
        let from = &self.segments[&source.segment][source.offset..source.offset + len];
        let moved = from.to_vec();
        let bytes = self
            .segments
            .get_mut(&target.segment)
            .expect("extents are of segments");
        bytes[at..at + len].copy_from_slice(&moved);
        let own = self
            .segments
            .get_mut(&source.segment)
            .expect("extents are of segments");
        own[source.offset..source.end()].fill(0);
        true
    }

    /// A sector of a synced write fails to read from now on. False when nothing was written.
    pub fn make_unreadable(&mut self, pick: Pick) -> bool {
        if self.extents.is_empty() {
            return false;
        }
        let extent = self.extents[pick(self.extents.len())];
        let sector = (extent.offset + pick(extent.len)) / SECTOR_BYTES;
        assert!(
            extent.sectors().contains(&sector),
            "the sector is one of the write's"
        );
        self.unreadable.insert((extent.segment, sector));
        true
    }
}

impl Device for MemoryDevice {
    fn segments(&mut self) -> Result<Vec<(u64, u64)>, DeviceError> {
        let sizes = self.segments.iter().map(|(i, b)| (*i, b.len() as u64));
        Ok(sizes.collect())
    }

    fn create(&mut self, index: u64, bytes: u64) -> Result<u64, DeviceError> {
        assert!(
            !self.segments.contains_key(&index),
            "segment {index} exists already"
        );
        let len = usize::try_from(bytes).expect("a segment fits in memory");
        self.segments.insert(index, vec![0; len]);
        Ok(bytes)
    }

    fn remove(&mut self, index: u64) -> Result<(), DeviceError> {
        assert!(
            self.unsynced.iter().all(|w| w.extent.segment != index),
            "a segment is removed only when synced"
        );
        self.segment(index)?;
        self.segments.remove(&index);
        self.extents.retain(|e| e.segment != index);
        self.unreadable.retain(|(segment, _)| *segment != index);
        Ok(())
    }

    fn read(&mut self, index: u64, offset: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        let extent = Extent {
            segment: index,
            offset: offset as usize,
            len: buf.len(),
        };
        let bytes = self.segment(index)?;
        assert!(extent.end() <= bytes.len(), "a read within segment {index}");
        buf.copy_from_slice(&bytes[extent.offset..extent.end()]);
        let bad = extent
            .sectors()
            .find(|s| self.unreadable.contains(&(index, *s)));
        match bad {
            None => Ok(()),
            Some(sector) => Err(DeviceError::Io(io::Error::other(format!(
                "latent sector error: segment {index}, sector {sector}"
            )))),
        }
    }

    fn write(&mut self, index: u64, offset: u64, data: &[u8]) -> Result<(), DeviceError> {
        let extent = Extent {
            segment: index,
            offset: offset as usize,
            len: data.len(),
        };
        let bytes = self.segment(index)?;
        assert!(
            extent.end() <= bytes.len(),
            "a write within segment {index}"
        );
        let replaced = bytes[extent.offset..extent.end()].to_vec();
        bytes[extent.offset..extent.end()].copy_from_slice(data);
        // A sector written again is readable again (the drive remaps it).
        for sector in extent.sectors() {
            self.unreadable.remove(&(index, sector));
        }
        self.unsynced.push(Unsynced { extent, replaced });
        Ok(())
    }

    fn sync(&mut self, index: u64) -> Result<(), DeviceError> {
        self.segment(index)?;
        let (synced, unsynced) = std::mem::take(&mut self.unsynced)
            .into_iter()
            .partition(|w| w.extent.segment == index);
        self.unsynced = unsynced;
        let synced: Vec<Unsynced> = synced;
        assert!(
            synced.iter().all(|w| w.extent.segment == index),
            "a sync covers its own segment's writes"
        );
        self.extents.extend(synced.into_iter().map(|w| w.extent));
        Ok(())
    }

    fn path(&self, index: u64) -> PathBuf {
        PathBuf::from("memory").join(segment_name(index))
    }

    fn location(&self) -> PathBuf {
        PathBuf::from("memory")
    }
}

//! Where the next record goes: a pure function of the cursor, the record size and the limits.

/// A position in the shard's extents.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Cursor {
    pub(crate) extent: u64,
    pub(crate) offset: u64,
}

/// Extent geometry and the shard's share of the disk budget.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ExtentLayout {
    pub(crate) extent_bytes: u64,
    /// Extents this shard may allocate; `None` for no limit.
    pub(crate) max_extents: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Placement {
    /// The record goes at `at`; the cursor moves to `next`.
    At { at: Cursor, next: Cursor },
    /// No extent the shard may use has room.
    DiskFull { reason: String },
}

impl ExtentLayout {
    /// Places a record of `record_bytes` (4 KiB-aligned, at most one extent) at `cursor`, or at
    /// the start of the next extent when the current one has no room for it.
    pub(crate) fn place(&self, cursor: Cursor, record_bytes: u64) -> Placement {
        assert!(
            record_bytes > 0 && record_bytes <= self.extent_bytes,
            "record of {record_bytes} bytes does not fit an extent of {}",
            self.extent_bytes
        );
        let at = if cursor.offset + record_bytes <= self.extent_bytes {
            cursor
        } else {
            Cursor {
                extent: cursor.extent + 1,
                offset: 0,
            }
        };
        if let Some(max_extents) = self.max_extents
            && at.extent >= max_extents
        {
            return Placement::DiskFull {
                reason: format!(
                    "disk full: extent {} would exceed this shard's budget of {max_extents} extents of {} bytes",
                    at.extent, self.extent_bytes
                ),
            };
        }
        Placement::At {
            at,
            next: Cursor {
                extent: at.extent,
                offset: at.offset + record_bytes,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECORD: u64 = 4096;

    fn layout(max_extents: Option<u64>) -> ExtentLayout {
        ExtentLayout {
            extent_bytes: 3 * RECORD,
            max_extents,
        }
    }

    fn at(extent: u64, offset: u64) -> Cursor {
        Cursor { extent, offset }
    }

    #[test]
    fn records_fill_an_extent_then_roll_over() {
        let layout = layout(None);
        assert_eq!(
            layout.place(at(0, 0), RECORD),
            Placement::At {
                at: at(0, 0),
                next: at(0, RECORD)
            }
        );
        assert_eq!(
            layout.place(at(0, 2 * RECORD), RECORD),
            Placement::At {
                at: at(0, 2 * RECORD),
                next: at(0, 3 * RECORD)
            }
        );
        // A full extent, or one whose tail is too short, sends the record to the next one.
        assert_eq!(
            layout.place(at(0, 3 * RECORD), RECORD),
            Placement::At {
                at: at(1, 0),
                next: at(1, RECORD)
            }
        );
        assert_eq!(
            layout.place(at(0, RECORD + 1), 2 * RECORD),
            Placement::At {
                at: at(1, 0),
                next: at(1, 2 * RECORD)
            }
        );
    }

    #[test]
    fn budget_stops_new_extents_but_not_the_current_one() {
        let one_extent = layout(Some(1));
        assert!(matches!(
            one_extent.place(at(0, RECORD), RECORD),
            Placement::At { .. }
        ));
        let Placement::DiskFull { reason } = one_extent.place(at(0, 3 * RECORD), RECORD) else {
            panic!("expected disk full");
        };
        assert!(reason.starts_with("disk full"), "{reason}");
        assert!(matches!(
            layout(Some(0)).place(at(0, 0), RECORD),
            Placement::DiskFull { .. }
        ));
    }
}

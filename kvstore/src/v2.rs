//! A read-only reader of redb file format v2, as redb 2.x writes it: enough to enumerate the
//! tables of a database and read every table's raw `(key, value)` pairs in key order, so that
//! the data can be written into a database of today's format. Written from the format's facts;
//! nothing here writes to the file.
//!
//! The layout, as this reader relies on it (all integers little-endian):
//!
//! - The first page is the super-header. Bytes 0..9 are the magic number, byte 9 the "god
//!   byte" (bit 0: which commit slot is primary, bit 1: recovery required, i.e. the file was not
//!   closed cleanly, bit 2: the primary was written with two-phase commit), bytes 12..16 the page
//!   size, 16..20 the header pages of each region, 20..24 the most data pages of a region,
//!   24..28 the number of full regions and 28..32 the data pages of the trailing partial one.
//! - Two commit slots of 128 bytes at offsets 64 and 192: version (1 byte, 2 for this format),
//!   non-null flags of the user, system and freed roots (1 byte each), 4 bytes of padding, then
//!   the three roots (each a [`BtreeHeader`]: page number, XXH3-128 checksum of the root page,
//!   number of entries), the last transaction id, and at byte 112 the XXH3-128 of bytes 0..112.
//! - A page number is a u64: bits 0..20 the page index within its region (only the low
//!   `20 - order` bits count), bits 20..40 the region, bits 59..64 the order: the page spans
//!   `2^order` pages of the page size. Region `r` starts at `page_size + r * (header pages + max
//!   data pages) * page_size`, and its data pages after its header pages.
//! - A B-tree page starts with its type (1 = leaf, 2 = branch). A leaf holds `n` pairs (u16 at
//!   byte 2), then, for variable-width keys, `n` u32 key end offsets, for variable-width values
//!   `n` u32 value end offsets, then the keys, then the values. A branch holds `k` keys (u16 at
//!   byte 2), at byte 8 the `k + 1` children's checksums (16 bytes each), then their page numbers
//!   (8 bytes each), for variable-width keys `k` u32 key end offsets, then the keys. A page's
//!   checksum is the XXH3-128 of its bytes up to the end of its last value (leaf) or key
//!   (branch); its parent (or the tree's header) records it.
//! - The user root is the table tree: table name (`&str`) → table definition (type byte 3 for a
//!   normal table, 4 for a multimap one; the number of entries; the table's own root; fixed key
//!   and value widths; alignments; and the key and value type names).
//!
//! Every read is bounds-checked against the file's length, trees are at most [`MAX_DEPTH`]
//! levels deep and a walk visits at most as many pages as the file holds, and every page's
//! checksum is verified, so a corrupt file gives an [`Error::Corrupt`] naming the file and what
//! is wrong, never a panic, an endless loop or an allocation beyond the file's size.

use crate::Error;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// redb's magic number, the first bytes of every redb file.
pub(crate) const MAGIC: [u8; 9] = [b'r', b'e', b'd', b'b', 0x1A, 0x0A, 0xA9, 0x0D, 0x0A];
/// The super-header: the first 64 bytes and two commit slots of 128 bytes.
pub(crate) const HEADER_BYTES: usize = 64 + 2 * SLOT_BYTES;
const GOD_BYTE: usize = 9;
const PRIMARY_BIT: u8 = 1;
const RECOVERY_REQUIRED: u8 = 2;
const TWO_PHASE_COMMIT: u8 = 4;
const PAGE_SIZE_AT: usize = 12;
const REGION_HEADER_PAGES_AT: usize = 16;
const REGION_MAX_DATA_PAGES_AT: usize = 20;
const FULL_REGIONS_AT: usize = 24;
const TRAILING_REGION_PAGES_AT: usize = 28;
pub(crate) const SLOT_AT: [usize; 2] = [64, 64 + SLOT_BYTES];
const SLOT_BYTES: usize = 128;
const SLOT_USER_ROOT_FLAG: usize = 1;
const SLOT_SYSTEM_ROOT_FLAG: usize = 2;
const SLOT_USER_ROOT: usize = 8;
const SLOT_SYSTEM_ROOT: usize = SLOT_USER_ROOT + BTREE_HEADER_BYTES;
const SLOT_TRANSACTION_ID: usize = SLOT_USER_ROOT + 3 * BTREE_HEADER_BYTES;
const SLOT_CHECKSUM_AT: usize = SLOT_BYTES - 16;
const BTREE_HEADER_BYTES: usize = 8 + 16 + 8;

/// The file format this module reads.
pub const FORMAT_VERSION: u8 = 2;

const LEAF: u8 = 1;
const BRANCH: u8 = 2;
/// Table definition type bytes: 1 and 2 are file format v1's, 3 a normal table, 4 a multimap.
const TABLE_NORMAL: u8 = 3;
const TABLE_MULTIMAP: u8 = 4;
/// redb's type-name classification byte of its own (built-in) types.
const TYPE_INTERNAL: u8 = 1;
const TYPE_USER_DEFINED: u8 = 2;

/// Deepest B-tree this reader walks. redb's branch pages hold at least two children, so a tree
/// of 64 levels would need more than 2^63 pages; a deeper one is corrupt.
pub const MAX_DEPTH: usize = 64;
/// Largest page size accepted (redb 2 writes 4 KiB pages; it allows any power of two).
const MAX_PAGE_SIZE: u32 = 1 << 20;
/// Smallest: the super-header must fit in the first page.
const MIN_PAGE_SIZE: u32 = 512;
/// A page number's order is at most 20 (a page of 2^20 pages).
const MAX_PAGE_ORDER: u8 = 20;
/// A region holds at most 2^20 data pages (a page index has 20 bits).
const MAX_REGION_PAGES: u32 = 1 << 20;

/// A B-tree's root as a commit slot or a table definition records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BtreeHeader {
    pub root: PageNumber,
    /// XXH3-128 of the root page's used bytes.
    pub checksum: u128,
    /// Entries in the tree.
    pub length: u64,
}

impl BtreeHeader {
    fn parse(bytes: &[u8]) -> BtreeHeader {
        BtreeHeader {
            root: PageNumber::parse(u64_at(bytes, 0)),
            checksum: u128_at(bytes, 8),
            length: u64_at(bytes, 24),
        }
    }
}

/// A page's place in the file: region, index within the region, and order (`2^order` pages).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageNumber {
    pub region: u32,
    pub index: u32,
    pub order: u8,
}

impl PageNumber {
    fn parse(raw: u64) -> PageNumber {
        let order = (raw >> 59) as u8;
        // Only the low `20 - order` bits of the index count; the rest is reserved. An order
        // above 20 is refused where the page is located.
        let index_mask = 0x000F_FFFFu64 >> order.min(MAX_PAGE_ORDER);
        PageNumber {
            region: ((raw >> 20) & 0x000F_FFFF) as u32,
            index: (raw & index_mask) as u32,
            order,
        }
    }
}

impl std::fmt::Display for PageNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "page r{}.{}/{}", self.region, self.index, self.order)
    }
}

/// Normal tables map a key to one value; multimap tables to a set (not read by this module).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableKind {
    Normal,
    Multimap,
}

/// One table of the file, as its definition in the table tree describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableInfo {
    pub name: String,
    pub kind: TableKind,
    /// redb 2's name of the key type (`u64`, `&str`, `(&str,u32)`, …).
    pub key_type: String,
    pub value_type: String,
    pub fixed_key_width: Option<usize>,
    pub fixed_value_width: Option<usize>,
    /// Entries, as the definition records it (checked against the tree when it is read).
    pub length: u64,
    /// `None` for an empty table.
    pub root: Option<BtreeHeader>,
}

/// What [`V2File::for_each`] calls with each `(key, value)`; an error stops the walk.
pub type Visitor<'a> = dyn FnMut(&[u8], &[u8]) -> Result<(), Error> + 'a;

/// One `(key, value)` pair, copied out of the file.
pub type Entry = (Vec<u8>, Vec<u8>);

/// The shape of a tree, as a walk over it found it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TreeStats {
    /// Levels: 1 for a tree that is one leaf.
    pub depth: usize,
    /// Pages read (branches and leaves).
    pub pages: u64,
}

/// What the super-header says, for [`V2File::header`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderInfo {
    pub page_size: u32,
    pub region_header_pages: u32,
    pub region_max_data_pages: u32,
    /// The file was not closed cleanly (redb 2 would run its repair on open).
    pub recovery_required: bool,
    /// The commit slot read (0 or 1).
    pub slot: usize,
    pub transaction_id: u64,
    pub user_root: Option<BtreeHeader>,
    pub system_root: Option<BtreeHeader>,
}

/// One commit slot, parsed.
#[derive(Clone, Debug)]
struct Slot {
    version: u8,
    checksum_ok: bool,
    transaction_id: u64,
    user_root: Option<BtreeHeader>,
    system_root: Option<BtreeHeader>,
}

impl Slot {
    fn parse(bytes: &[u8]) -> Slot {
        let checksum_ok = u128_at(bytes, SLOT_CHECKSUM_AT) == xxh3(&bytes[..SLOT_CHECKSUM_AT]);
        let root = |flag: usize, at: usize| {
            (bytes[flag] != 0).then(|| BtreeHeader::parse(&bytes[at..at + BTREE_HEADER_BYTES]))
        };
        Slot {
            version: bytes[0],
            checksum_ok,
            transaction_id: u64_at(bytes, SLOT_TRANSACTION_ID),
            user_root: root(SLOT_USER_ROOT_FLAG, SLOT_USER_ROOT),
            system_root: root(SLOT_SYSTEM_ROOT_FLAG, SLOT_SYSTEM_ROOT),
        }
    }
}

/// An open redb v2 file. Reads go straight to the file (positioned reads, no cache): the
/// reader exists to copy a database once.
pub struct V2File {
    path: PathBuf,
    file: File,
    len: u64,
    page_size: u64,
    region_header_pages: u32,
    region_max_data_pages: u32,
    header: HeaderInfo,
}

impl V2File {
    /// Opens `path` and picks the commit to read: the primary slot of a cleanly closed file;
    /// for one that was not closed cleanly, the commit redb 2's repair would pick (the newer
    /// slot whose checksum holds, falling back to the other when its tree does not verify).
    pub fn open(path: &Path) -> Result<V2File, Error> {
        let file = File::open(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            operation: "open",
            source,
        })?;
        let len = file
            .metadata()
            .map_err(|source| Error::Io {
                path: path.to_path_buf(),
                operation: "stat",
                source,
            })?
            .len();
        let corrupt = |reason: String| Error::Corrupt {
            path: path.to_path_buf(),
            reason,
        };
        if len < HEADER_BYTES as u64 {
            return Err(corrupt(format!(
                "{len} bytes, shorter than the {HEADER_BYTES}-byte redb header"
            )));
        }
        let mut head = [0u8; HEADER_BYTES];
        file.read_exact_at(&mut head, 0)
            .map_err(|source| Error::Io {
                path: path.to_path_buf(),
                operation: "read the header",
                source,
            })?;
        if head[..MAGIC.len()] != MAGIC {
            return Err(corrupt("no redb magic number".to_string()));
        }
        let god = head[GOD_BYTE];
        let page_size = u32_at(&head, PAGE_SIZE_AT);
        if !page_size.is_power_of_two() || !(MIN_PAGE_SIZE..=MAX_PAGE_SIZE).contains(&page_size) {
            return Err(corrupt(format!(
                "page size {page_size} is not a power of two in {MIN_PAGE_SIZE}..={MAX_PAGE_SIZE}"
            )));
        }
        let region_header_pages = u32_at(&head, REGION_HEADER_PAGES_AT);
        let region_max_data_pages = u32_at(&head, REGION_MAX_DATA_PAGES_AT);
        if region_max_data_pages == 0 || region_max_data_pages > MAX_REGION_PAGES {
            return Err(corrupt(format!(
                "a region of {region_max_data_pages} data pages (1..={MAX_REGION_PAGES})"
            )));
        }
        if region_header_pages > MAX_REGION_PAGES {
            return Err(corrupt(format!(
                "a region header of {region_header_pages} pages"
            )));
        }
        // The regions the header lays out must all be there: redb 2 never leaves a file
        // shorter than its layout, so a shorter one was cut.
        let full_regions = u64::from(u32_at(&head, FULL_REGIONS_AT));
        let trailing_pages = u64::from(u32_at(&head, TRAILING_REGION_PAGES_AT));
        let page = u64::from(page_size);
        let region_bytes =
            (u64::from(region_header_pages) + u64::from(region_max_data_pages)) * page;
        let trailing_bytes = if trailing_pages > 0 {
            (u64::from(region_header_pages) + trailing_pages) * page
        } else {
            0
        };
        let layout_len = full_regions
            .checked_mul(region_bytes)
            .and_then(|bytes| bytes.checked_add(page + trailing_bytes));
        match layout_len {
            Some(layout_len) if layout_len <= len => {}
            Some(layout_len) => {
                return Err(corrupt(format!(
                    "{len} bytes, shorter than the {layout_len} bytes its header lays out (truncated?)"
                )));
            }
            None => {
                return Err(corrupt(
                    "the header lays out an impossible size".to_string(),
                ));
            }
        }
        let slots = [
            Slot::parse(&head[SLOT_AT[0]..SLOT_AT[0] + SLOT_BYTES]),
            Slot::parse(&head[SLOT_AT[1]..SLOT_AT[1] + SLOT_BYTES]),
        ];
        let primary = usize::from(god & PRIMARY_BIT != 0);
        let secondary = primary ^ 1;
        match slots[primary].version {
            FORMAT_VERSION => {}
            version @ (1 | 3) => {
                return Err(Error::NotV2 {
                    path: path.to_path_buf(),
                    version,
                });
            }
            other => return Err(corrupt(format!("unknown file format version {other}"))),
        }
        let recovery_required = god & RECOVERY_REQUIRED != 0;
        // The commits to try, best first.
        let mut candidates = Vec::with_capacity(2);
        let usable = |slot: &Slot| slot.checksum_ok && slot.version == FORMAT_VERSION;
        if !recovery_required || god & TWO_PHASE_COMMIT != 0 {
            // A clean file's primary is its last commit; so is a two-phase-committed one's.
            candidates.push(primary);
        } else if !usable(&slots[primary]) {
            candidates.push(secondary);
        } else if usable(&slots[secondary])
            && slots[secondary].transaction_id > slots[primary].transaction_id
        {
            // The crash came after the slot was written and before the god byte flipped.
            candidates.extend([secondary, primary]);
        } else {
            candidates.push(primary);
            if usable(&slots[secondary]) {
                candidates.push(secondary);
            }
        }
        let mut failures = Vec::new();
        for &slot in &candidates {
            let chosen = &slots[slot];
            let reader = V2File {
                path: path.to_path_buf(),
                file: file.try_clone().map_err(|source| Error::Io {
                    path: path.to_path_buf(),
                    operation: "duplicate the file handle",
                    source,
                })?,
                len,
                page_size: u64::from(page_size),
                region_header_pages,
                region_max_data_pages,
                header: HeaderInfo {
                    page_size,
                    region_header_pages,
                    region_max_data_pages,
                    recovery_required,
                    slot,
                    transaction_id: chosen.transaction_id,
                    user_root: chosen.user_root,
                    system_root: chosen.system_root,
                },
            };
            if !chosen.checksum_ok {
                failures.push(format!("commit slot {slot} fails its checksum"));
                continue;
            }
            if recovery_required && candidates.len() > 1 {
                // Not closed cleanly: take this commit only if every tree verifies.
                match reader.verify() {
                    Ok(()) => return Ok(reader),
                    Err(Error::Corrupt { reason, .. }) => {
                        failures.push(format!("commit slot {slot}: {reason}"));
                        continue;
                    }
                    Err(other) => return Err(other),
                }
            }
            return Ok(reader);
        }
        Err(corrupt(format!(
            "no commit can be read: {}",
            failures.join("; ")
        )))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn header(&self) -> &HeaderInfo {
        &self.header
    }

    fn corrupt(&self, reason: impl Into<String>) -> Error {
        Error::Corrupt {
            path: self.path.clone(),
            reason: reason.into(),
        }
    }

    /// The tables of the chosen commit, in name order.
    pub fn tables(&self) -> Result<Vec<TableInfo>, Error> {
        let Some(root) = self.header.user_root else {
            return Ok(Vec::new());
        };
        let mut tables = Vec::new();
        self.walk(
            "the table tree",
            root,
            None,
            None,
            &mut |name: &[u8], definition: &[u8]| {
                let name = std::str::from_utf8(name)
                    .map_err(|_| self.corrupt("a table name is not UTF-8"))?;
                tables.push(self.parse_definition(name, definition)?);
                Ok(())
            },
        )?;
        Ok(tables)
    }

    /// Calls `visit` with each `(key, value)` of `table` in key order, after checking every
    /// page's checksum and, at the end, that the count matches the table's recorded length;
    /// returns the tree's shape. An error from `visit` stops the walk and is returned.
    pub fn for_each(&self, table: &TableInfo, visit: &mut Visitor<'_>) -> Result<TreeStats, Error> {
        if table.kind != TableKind::Normal {
            return Err(self.corrupt(format!(
                "table {} is a multimap table, which this reader does not read",
                table.name
            )));
        }
        let Some(root) = table.root else {
            if table.length != 0 {
                return Err(self.corrupt(format!(
                    "table {} records {} entries but has no root",
                    table.name, table.length
                )));
            }
            return Ok(TreeStats::default());
        };
        if root.length != table.length {
            return Err(self.corrupt(format!(
                "table {} records {} entries, its tree {}",
                table.name, table.length, root.length
            )));
        }
        self.walk(
            &format!("table {}", table.name),
            root,
            table.fixed_key_width,
            table.fixed_value_width,
            visit,
        )
    }

    /// Every table's pairs, read into memory (for tests and small files).
    pub fn entries(&self, table: &TableInfo) -> Result<Vec<Entry>, Error> {
        let mut out = Vec::new();
        self.for_each(table, &mut |key, value| {
            out.push((key.to_vec(), value.to_vec()));
            Ok(())
        })?;
        Ok(out)
    }

    /// Reads every normal table of the chosen commit, checking every checksum and count.
    pub fn verify(&self) -> Result<(), Error> {
        for table in self.tables()? {
            if table.kind == TableKind::Normal {
                self.for_each(&table, &mut |_, _| Ok(()))?;
            }
        }
        Ok(())
    }

    /// Depth-first, in key order, over the tree at `root`; checks the entry count.
    fn walk(
        &self,
        what: &str,
        root: BtreeHeader,
        fixed_key: Option<usize>,
        fixed_value: Option<usize>,
        visit: &mut Visitor<'_>,
    ) -> Result<TreeStats, Error> {
        let mut walk = Walk {
            file: self,
            what,
            fixed_key,
            fixed_value,
            pages_left: self.len / self.page_size,
            entries: 0,
            stats: TreeStats::default(),
        };
        walk.page(root.root, root.checksum, 0, visit)?;
        if walk.entries != root.length {
            return Err(self.corrupt(format!(
                "{what} holds {} entries, its header records {}",
                walk.entries, root.length
            )));
        }
        Ok(walk.stats)
    }

    /// The bytes of `page`, bounds-checked against the file.
    fn read_page(&self, page: PageNumber) -> Result<Vec<u8>, Error> {
        if page.order > MAX_PAGE_ORDER {
            return Err(self.corrupt(format!("{page} has order above {MAX_PAGE_ORDER}")));
        }
        let pages = 1u64 << page.order;
        if u64::from(page.index).saturating_add(1) * pages > u64::from(self.region_max_data_pages) {
            return Err(self.corrupt(format!(
                "{page} lies beyond its region's {} data pages",
                self.region_max_data_pages
            )));
        }
        let region_pages =
            u64::from(self.region_header_pages) + u64::from(self.region_max_data_pages);
        let bytes = pages * self.page_size;
        let start = u64::from(page.region)
            .checked_mul(region_pages * self.page_size)
            .and_then(|base| base.checked_add(self.page_size))
            .and_then(|base| base.checked_add(u64::from(self.region_header_pages) * self.page_size))
            .and_then(|base| base.checked_add(u64::from(page.index) * bytes));
        let Some(start) = start.filter(|start| start.saturating_add(bytes) <= self.len) else {
            return Err(self.corrupt(format!(
                "{page} lies beyond the end of the file ({} bytes)",
                self.len
            )));
        };
        let size = usize::try_from(bytes)
            .map_err(|_| self.corrupt(format!("{page} does not fit in memory")))?;
        let mut buffer = vec![0u8; size];
        self.file
            .read_exact_at(&mut buffer, start)
            .map_err(|source| Error::Io {
                path: self.path.clone(),
                operation: "read a page",
                source,
            })?;
        Ok(buffer)
    }

    fn parse_definition(&self, name: &str, bytes: &[u8]) -> Result<TableInfo, Error> {
        let bad = |what: &str| self.corrupt(format!("the definition of table {name}: {what}"));
        let mut at = Cursor { bytes, at: 0 };
        let kind = match at.u8().ok_or_else(|| bad("empty"))? {
            TABLE_NORMAL => TableKind::Normal,
            TABLE_MULTIMAP => TableKind::Multimap,
            1 | 2 => return Err(bad("a table of file format v1")),
            other => return Err(bad(&format!("unknown table type {other}"))),
        };
        let length = at.u64().ok_or_else(|| bad("truncated length"))?;
        let has_root = at.u8().ok_or_else(|| bad("truncated root flag"))? != 0;
        let root_bytes = at
            .take(BTREE_HEADER_BYTES)
            .ok_or_else(|| bad("truncated root"))?;
        let root = has_root.then(|| BtreeHeader::parse(root_bytes));
        let mut width = |what: &str| -> Result<Option<usize>, Error> {
            let fixed = at
                .u8()
                .ok_or_else(|| bad(&format!("truncated {what} width")))?
                != 0;
            let width = at
                .u32()
                .ok_or_else(|| bad(&format!("truncated {what} width")))?;
            Ok(fixed.then_some(width as usize))
        };
        let fixed_key_width = width("key")?;
        let fixed_value_width = width("value")?;
        let key_alignment = at.u32().ok_or_else(|| bad("truncated key alignment"))?;
        let value_alignment = at.u32().ok_or_else(|| bad("truncated value alignment"))?;
        if key_alignment != 1 || value_alignment != 1 {
            return Err(bad(&format!(
                "alignments {key_alignment} and {value_alignment}, redb writes 1"
            )));
        }
        let key_type_len = at.u32().ok_or_else(|| bad("truncated key type"))? as usize;
        let key_type = at
            .take(key_type_len)
            .ok_or_else(|| bad("truncated key type"))?;
        let value_type = at.rest();
        let type_name = |bytes: &[u8], what: &str| -> Result<String, Error> {
            match bytes.split_first() {
                Some((&(TYPE_INTERNAL | TYPE_USER_DEFINED), name)) => std::str::from_utf8(name)
                    .map(str::to_string)
                    .map_err(|_| bad(&format!("the {what} type name is not UTF-8"))),
                _ => Err(bad(&format!(
                    "the {what} type name has no valid classification"
                ))),
            }
        };
        Ok(TableInfo {
            name: name.to_string(),
            kind,
            key_type: type_name(key_type, "key")?,
            value_type: type_name(value_type, "value")?,
            fixed_key_width,
            fixed_value_width,
            length,
            root,
        })
    }
}

/// The state of one tree walk.
struct Walk<'a> {
    file: &'a V2File,
    what: &'a str,
    fixed_key: Option<usize>,
    fixed_value: Option<usize>,
    /// Pages this walk may still read: a tree cannot have more pages than the file.
    pages_left: u64,
    entries: u64,
    stats: TreeStats,
}

impl Walk<'_> {
    fn corrupt(&self, page: PageNumber, reason: impl std::fmt::Display) -> Error {
        self.file
            .corrupt(format!("{}, {page}: {reason}", self.what))
    }

    fn page(
        &mut self,
        number: PageNumber,
        checksum: u128,
        depth: usize,
        visit: &mut Visitor<'_>,
    ) -> Result<(), Error> {
        if depth >= MAX_DEPTH {
            return Err(self.corrupt(number, format!("deeper than {MAX_DEPTH} levels")));
        }
        if self.pages_left == 0 {
            return Err(self.corrupt(number, "the tree has more pages than the file"));
        }
        self.pages_left -= 1;
        self.stats.pages += 1;
        self.stats.depth = self.stats.depth.max(depth + 1);
        let page = self.file.read_page(number)?;
        match page[0] {
            LEAF => self.leaf(number, &page, checksum, visit),
            BRANCH => {
                let children = self.branch(number, &page, checksum)?;
                // Only one page is held at a time, whatever the depth.
                drop(page);
                for (child_page, child_checksum) in children {
                    self.page(child_page, child_checksum, depth + 1, visit)?;
                }
                Ok(())
            }
            other => Err(self.corrupt(number, format!("unknown page type {other}"))),
        }
    }

    fn check(&self, number: PageNumber, used: &[u8], expected: u128) -> Result<(), Error> {
        let actual = xxh3(used);
        if actual != expected {
            return Err(self.corrupt(
                number,
                format!("checksum {actual:#034x}, its parent records {expected:#034x}"),
            ));
        }
        Ok(())
    }

    fn leaf(
        &mut self,
        number: PageNumber,
        page: &[u8],
        checksum: u128,
        visit: &mut Visitor<'_>,
    ) -> Result<(), Error> {
        let pairs = usize::from(u16::from_le_bytes([page[2], page[3]]));
        if pairs == 0 {
            return Err(self.corrupt(number, "a leaf with no entries"));
        }
        let key_ends_at = 4;
        let value_ends_at = key_ends_at
            + if self.fixed_key.is_none() {
                4 * pairs
            } else {
                0
            };
        let data_at = value_ends_at
            + if self.fixed_value.is_none() {
                4 * pairs
            } else {
                0
            };
        if data_at > page.len() {
            return Err(self.corrupt(number, format!("{pairs} entries do not fit the page")));
        }
        // Offsets (within the page) where key i and value i end.
        let key_end = |i: usize| -> Option<usize> {
            match self.fixed_key {
                Some(width) => width.checked_mul(i + 1)?.checked_add(data_at),
                None => Some(u32_at(page, key_ends_at + 4 * i) as usize),
            }
        };
        let keys_end = key_end(pairs - 1);
        let value_end = |i: usize| -> Option<usize> {
            match self.fixed_value {
                Some(width) => width.checked_mul(i + 1)?.checked_add(keys_end?),
                None => Some(u32_at(page, value_ends_at + 4 * i) as usize),
            }
        };
        let end = value_end(pairs - 1)
            .filter(|&end| end <= page.len())
            .ok_or_else(|| self.corrupt(number, "its last value ends beyond the page"))?;
        self.check(number, &page[..end], checksum)?;
        let mut key_start = data_at;
        let mut value_start = keys_end.unwrap_or(usize::MAX);
        for i in 0..pairs {
            let key_end = key_end(i).unwrap_or(usize::MAX);
            let value_end = value_end(i).unwrap_or(usize::MAX);
            if key_start > key_end || key_end > value_start || value_start > value_end {
                return Err(self.corrupt(number, format!("entry {i} has inconsistent offsets")));
            }
            let key = page
                .get(key_start..key_end)
                .ok_or_else(|| self.corrupt(number, format!("key {i} lies beyond the page")))?;
            let value = page
                .get(value_start..value_end)
                .ok_or_else(|| self.corrupt(number, format!("value {i} lies beyond the page")))?;
            visit(key, value)?;
            self.entries += 1;
            key_start = key_end;
            value_start = value_end;
        }
        Ok(())
    }

    /// A checked branch page's children: page and checksum, in key order.
    fn branch(
        &mut self,
        number: PageNumber,
        page: &[u8],
        checksum: u128,
    ) -> Result<Vec<(PageNumber, u128)>, Error> {
        let keys = usize::from(u16::from_le_bytes([page[2], page[3]]));
        if keys == 0 {
            return Err(self.corrupt(number, "a branch with no keys"));
        }
        let children = keys + 1;
        let checksums_at = 8;
        let pages_at = checksums_at + 16 * children;
        let key_ends_at = pages_at + 8 * children;
        let keys_at = key_ends_at
            + if self.fixed_key.is_none() {
                4 * keys
            } else {
                0
            };
        if keys_at > page.len() {
            return Err(self.corrupt(number, format!("{keys} keys do not fit the page")));
        }
        let end = match self.fixed_key {
            Some(width) => width
                .checked_mul(keys)
                .and_then(|len| len.checked_add(keys_at)),
            None => Some(u32_at(page, key_ends_at + 4 * (keys - 1)) as usize),
        }
        .filter(|&end| end >= keys_at && end <= page.len())
        .ok_or_else(|| self.corrupt(number, "its last key ends beyond the page"))?;
        self.check(number, &page[..end], checksum)?;
        Ok((0..children)
            .map(|child| {
                let child_checksum = u128_at(page, checksums_at + 16 * child);
                let child_page = PageNumber::parse(u64_at(page, pages_at + 8 * child));
                (child_page, child_checksum)
            })
            .collect())
    }
}

/// A bounds-checked reader over a byte slice.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(len)?;
        let out = self.bytes.get(self.at..end)?;
        self.at = end;
        Some(out)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|bytes| bytes[0])
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4).map(|bytes| u32_at(bytes, 0))
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8).map(|bytes| u64_at(bytes, 0))
    }
    fn rest(&mut self) -> &'a [u8] {
        let out = &self.bytes[self.at.min(self.bytes.len())..];
        self.at = self.bytes.len();
        out
    }
}

/// redb's checksum: XXH3-128 with seed 0.
fn xxh3(bytes: &[u8]) -> u128 {
    xxhash_rust::xxh3::xxh3_128(bytes)
}

// Fixed-size little-endian reads. Every caller has checked (or sized) the slice so the bytes
// are there; `get` keeps a miscalculation from panicking by reading zeros instead, which the
// checksums then refuse.
fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut out = [0u8; 4];
    if let Some(slice) = bytes.get(at..at + 4) {
        out.copy_from_slice(slice);
    }
    u32::from_le_bytes(out)
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut out = [0u8; 8];
    if let Some(slice) = bytes.get(at..at + 8) {
        out.copy_from_slice(slice);
    }
    u64::from_le_bytes(out)
}

fn u128_at(bytes: &[u8], at: usize) -> u128 {
    let mut out = [0u8; 16];
    if let Some(slice) = bytes.get(at..at + 16) {
        out.copy_from_slice(slice);
    }
    u128::from_le_bytes(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_numbers_decode_region_index_and_order() {
        let raw = (3u64 << 59) | (7u64 << 20) | 0b1010;
        assert_eq!(
            PageNumber::parse(raw),
            PageNumber {
                region: 7,
                index: 0b1010,
                order: 3
            }
        );
        // The bits above `20 - order` of the index are reserved and ignored.
        let raw = (4u64 << 59) | 0x000F_FFFF;
        assert_eq!(PageNumber::parse(raw).index, 0xFFFF);
    }

    #[test]
    fn cursor_refuses_reads_past_the_end() {
        let mut cursor = Cursor {
            bytes: &[1, 2, 3],
            at: 0,
        };
        assert_eq!(cursor.u8(), Some(1));
        assert_eq!(cursor.u32(), None);
        assert_eq!(cursor.take(usize::MAX), None);
        assert_eq!(cursor.rest(), &[2, 3]);
        assert_eq!(cursor.rest(), &[] as &[u8]);
    }
}

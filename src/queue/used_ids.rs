//! Every job_id the queue has used, kept beside the index so that a rebuilt index still
//! refuses them: `used_ids`, an append-only file of 32-byte MACs under the seal key (never the
//! ids themselves, so a purged job leaves no readable trace).
//!
//! The index (`meta`'s `retired/` keys and the job_id tree) is what answers; this file only
//! refills it when sled's index was lost and rebuilt from the bundles, which know nothing of
//! finished, purged or removed jobs.

use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

pub const FILE: &str = "used_ids";
const MAC_LEN: usize = 32;

fn path(dir: &Path) -> PathBuf {
    dir.join(FILE)
}

/// Appends `macs` and fsyncs. A crash may leave a torn last record, which [`read`] skips.
pub fn append(dir: &Path, macs: &[[u8; MAC_LEN]]) -> std::io::Result<()> {
    let mut f = OpenOptions::new().append(true).create(true).mode(0o600).open(path(dir))?;
    // A torn record from a crash would shift every later one: pad it out first.
    let torn = f.metadata()?.len() as usize % MAC_LEN;
    if torn != 0 {
        f.write_all(&[0u8; MAC_LEN][..MAC_LEN - torn])?;
    }
    f.write_all(&macs.concat())?;
    f.sync_all()
}

/// The MACs in the file from record `first` on (those before are read once, not at every
/// open); `None` if the file is missing.
pub fn read_from(dir: &Path, first: usize) -> std::io::Result<Option<Vec<[u8; MAC_LEN]>>> {
    let mut f = match std::fs::File::open(path(dir)) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    f.seek(SeekFrom::Start((first * MAC_LEN) as u64))?;
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes)?;
    Ok(Some(bytes.chunks_exact(MAC_LEN).map(|c| c.try_into().expect("chunks of MAC_LEN")).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torn_record_is_skipped_and_later_ones_stay_whole() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_from(dir.path(), 0).unwrap().is_none());
        append(dir.path(), &[[1; 32], [2; 32]]).unwrap();
        // A crash in the middle of the next append.
        let mut f = OpenOptions::new().append(true).open(path(dir.path())).unwrap();
        f.write_all(&[3; 10]).unwrap();
        append(dir.path(), &[[4; 32]]).unwrap();
        let got = read_from(dir.path(), 0).unwrap().unwrap();
        assert_eq!(got.len(), 4);
        assert_eq!((got[0], got[1], got[3]), ([1; 32], [2; 32], [4; 32]));
        assert_eq!(read_from(dir.path(), 3).unwrap().unwrap(), [[4; 32]], "only the records not yet taken in");
    }
}

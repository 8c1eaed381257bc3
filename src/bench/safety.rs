//! Data safety: before anything writes to a block device, prove it blank
//! and unused. A device is refused when it is mounted, used as swap, held by
//! another kernel user (holders: dm, md, bcache...), open in another
//! process, refuses an exclusive open, has partitions, or carries any
//! partition table, filesystem or volume signature, or any other data, in
//! its first or last MiB. Write workloads never touch those two MiB, so a
//! device the harness wrote to still passes the next check.

use std::fs;
use std::io;
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::sysinfo::Roots;

/// The bytes at each end of a device that must be blank, and that write
/// workloads leave alone.
pub const GUARD_BYTES: u64 = 1 << 20;

/// What was found on one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    pub device: String,
    pub findings: Vec<String>,
}

impl Inspection {
    pub fn is_safe(&self) -> bool {
        self.findings.is_empty()
    }

    /// "refusing to write to /dev/loop0: ext4 filesystem (...); mounted at /mnt"
    pub fn refusal(&self) -> String {
        format!(
            "refusing to write to {}: {}",
            self.device,
            self.findings.join("; ")
        )
    }
}

/// Known signatures in the first bytes (`head`, from offset 0) and the last
/// bytes (`tail`, ending at the device's end) of a device.
pub fn scan_signatures(head: &[u8], tail: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    let at = |off: usize, magic: &[u8]| head.get(off..off + magic.len()) == Some(magic);
    // Partition tables.
    for off in [512usize, 4096] {
        if at(off, b"EFI PART") {
            found.push(format!("GPT partition table ('EFI PART' at byte {off})"));
        }
    }
    for sector in [512usize, 4096] {
        if tail.len() >= sector && tail[tail.len() - sector..].starts_with(b"EFI PART") {
            found.push("backup GPT header ('EFI PART' in the last sector)".into());
            break;
        }
    }
    if at(510, &[0x55, 0xAA]) {
        found.push("MBR partition table or boot sector (0x55AA at byte 510)".into());
    }
    // Filesystems and volumes.
    let fs_magics: &[(usize, &[u8], &str)] = &[
        (
            1080,
            &[0x53, 0xEF],
            "ext2/3/4 filesystem (magic 0xEF53 at byte 1080)",
        ),
        (0, b"XFSB", "XFS filesystem ('XFSB' at byte 0)"),
        (
            0x10040,
            b"_BHRfS_M",
            "btrfs filesystem ('_BHRfS_M' at byte 65600)",
        ),
        (0, b"LUKS\xba\xbe", "LUKS encrypted volume (at byte 0)"),
        (
            0x4000,
            b"SKUL\xba\xbe",
            "LUKS2 secondary header (at byte 16384)",
        ),
        (
            1024,
            &[0x10, 0x20, 0xF5, 0xF2],
            "F2FS filesystem (magic at byte 1024)",
        ),
        (3, b"NTFS    ", "NTFS filesystem ('NTFS' at byte 3)"),
        (3, b"EXFAT   ", "exFAT filesystem ('EXFAT' at byte 3)"),
        (54, b"FAT1", "FAT filesystem ('FAT1x' at byte 54)"),
        (82, b"FAT32   ", "FAT32 filesystem ('FAT32' at byte 82)"),
        (
            32769,
            b"CD001",
            "ISO 9660 filesystem ('CD001' at byte 32769)",
        ),
        (0x10034, b"ReIsEr", "ReiserFS filesystem (at byte 65588)"),
        (
            0,
            b"bluestore block device",
            "Ceph BlueStore device (at byte 0)",
        ),
        (
            4096 + 24,
            &[
                0xc6, 0x85, 0x73, 0xf6, 0x4e, 0x1a, 0x45, 0xca, 0x82, 0x65, 0xf5, 0x7f, 0x48, 0xba,
                0x6d, 0x81,
            ],
            "bcache superblock (at byte 4120)",
        ),
    ];
    for &(off, magic, what) in fs_magics {
        if at(off, magic) {
            found.push(what.into());
        }
    }
    for sector in 0..4usize {
        if at(sector * 512, b"LABELONE") {
            found.push(format!(
                "LVM2 physical volume ('LABELONE' in sector {sector})"
            ));
        }
    }
    for page in [4096usize, 8192, 16384, 65536] {
        if at(page - 10, b"SWAPSPACE2") || at(page - 10, b"SWAP-SPACE") {
            found.push(format!("swap area (signature at byte {})", page - 10));
        }
    }
    let md = [0xfc, 0x4e, 0x2b, 0xa9];
    for off in [0usize, 4096] {
        if at(off, &md) {
            found.push(format!("Linux RAID (md) superblock (at byte {off})"));
        }
    }
    if (0..tail.len() / 4096).any(|i| tail[i * 4096..].starts_with(&md)) {
        found.push("Linux RAID (md) superblock near the end of the device".into());
    }
    // ZFS: uberblocks (magic 0x00bab10c) in the first label, 128-256 KiB.
    if (128..256)
        .any(|k| at(k * 1024, &[0x0c, 0xb1, 0xba, 0x00]) || at(k * 1024, &[0x00, 0xba, 0xb1, 0x0c]))
    {
        found.push("ZFS label (uberblock magic in the first 256 KiB)".into());
    }
    if found.is_empty() {
        for (region, bytes) in [("first", head), ("last", tail)] {
            if !blank(bytes) {
                let first = bytes.iter().position(|&b| b != 0).unwrap_or(0);
                found.push(format!(
                    "unrecognised data in its {region} MiB (byte {first} of that region is not zero): not a blank device"
                ));
            }
        }
    }
    found
}

/// All zeros, or all ones (how some drives read deallocated blocks).
fn blank(bytes: &[u8]) -> bool {
    bytes.iter().all(|&b| b == 0) || bytes.iter().all(|&b| b == 0xff)
}

/// Inspect the block device at `path` without writing anything.
pub fn inspect(roots: &Roots, path: &Path) -> Inspection {
    let shown = path.display().to_string();
    let mut findings = Vec::new();
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) => {
            return Inspection {
                device: shown,
                findings: vec![format!("cannot stat it: {e}")],
            }
        }
    };
    if !meta.file_type().is_block_device() {
        return Inspection {
            device: shown,
            findings: vec!["not a block device".into()],
        };
    }
    let canon = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let name = canon
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let rdev = meta.rdev();
    let class = roots.sys.join("class/block").join(&name);

    // The whole device and its partitions: (kernel name, "maj:min").
    let mut devs = vec![(name.clone(), dev_string(rdev))];
    let mut parts = Vec::new();
    if let Ok(rd) = fs::read_dir(&class) {
        for e in rd.flatten() {
            if e.path().join("partition").exists() {
                let pname = e.file_name().to_string_lossy().into_owned();
                let d = fs::read_to_string(e.path().join("dev")).unwrap_or_default();
                devs.push((pname.clone(), d.trim().to_string()));
                parts.push(pname);
            }
        }
    }
    parts.sort();
    if !parts.is_empty() {
        findings.push(format!("has partitions ({})", parts.join(", ")));
    }

    for (dname, d) in &devs {
        if let Some(m) = mounted_at(roots, d) {
            findings.push(format!("{dname} is mounted at {m}"));
        }
    }
    if let Ok(swaps) = fs::read_to_string(roots.proc.join("swaps")) {
        for line in swaps.lines().skip(1) {
            let Some(src) = line.split_whitespace().next() else {
                continue;
            };
            if same_device(Path::new(src), &devs) {
                findings.push(format!("{src} is in use as swap"));
            }
        }
    }
    for (dname, _) in &devs {
        let dir = if *dname == name {
            class.join("holders")
        } else {
            class.join(dname).join("holders")
        };
        let holders: Vec<String> = fs::read_dir(dir)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        if !holders.is_empty() {
            findings.push(format!(
                "{dname} is held by {} (device mapper, RAID or similar)",
                holders.join(", ")
            ));
        }
    }
    findings.extend(open_elsewhere(roots, &devs));

    // Exclusive open: the kernel refuses it while the device is mounted or
    // claimed (md, dm, another O_EXCL opener).
    let file = match fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_EXCL | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(f) => Some(f),
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
            findings.push("busy: the kernel refused an exclusive open (EBUSY)".into());
            fs::File::open(path).ok()
        }
        Err(e) => {
            findings.push(format!("cannot open it to read its signatures: {e}"));
            None
        }
    };
    if let Some(f) = file {
        match read_ends(&f) {
            Ok((head, tail)) => findings.extend(scan_signatures(&head, &tail)),
            Err(e) => findings.push(format!("cannot read its first and last MiB: {e}")),
        }
    }
    Inspection {
        device: shown,
        findings,
    }
}

fn dev_string(rdev: u64) -> String {
    format!("{}:{}", libc::major(rdev), libc::minor(rdev))
}

/// The first and last [`GUARD_BYTES`] (less for a small device).
fn read_ends(f: &fs::File) -> io::Result<(Vec<u8>, Vec<u8>)> {
    let size = device_size(f)?;
    let n = GUARD_BYTES.min(size);
    let mut head = vec![0u8; n as usize];
    f.read_exact_at(&mut head, 0)?;
    let mut tail = vec![0u8; n as usize];
    f.read_exact_at(&mut tail, size - n)?;
    Ok((head, tail))
}

/// A block device's size: seek to its end.
pub fn device_size(f: &fs::File) -> io::Result<u64> {
    use std::io::Seek;
    let mut f = f;
    f.seek(io::SeekFrom::End(0))
}

/// Where the device "maj:min" is mounted, from mountinfo's third field.
fn mounted_at(roots: &Roots, dev: &str) -> Option<String> {
    let text = fs::read_to_string(roots.proc.join("self/mountinfo")).ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() > 4 && f[2] == dev).then(|| f[4].to_string())
    })
}

fn same_device(p: &Path, devs: &[(String, String)]) -> bool {
    fs::metadata(p)
        .ok()
        .filter(|m| m.file_type().is_block_device())
        .is_some_and(|m| devs.iter().any(|(_, d)| *d == dev_string(m.rdev())))
}

/// Other processes with the device or a partition open.
fn open_elsewhere(roots: &Roots, devs: &[(String, String)]) -> Vec<String> {
    let me = std::process::id().to_string();
    let mut out = Vec::new();
    let Ok(procs) = fs::read_dir(&roots.proc) else {
        return out;
    };
    for p in procs.flatten() {
        let pid = p.file_name().to_string_lossy().into_owned();
        if pid == me || !pid.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        let Ok(fds) = fs::read_dir(p.path().join("fd")) else {
            continue;
        };
        let hit = fds.flatten().any(|fd| {
            fs::read_link(fd.path())
                .is_ok_and(|t: PathBuf| t.starts_with("/dev/") && same_device(&t, devs))
        });
        if hit {
            let comm = fs::read_to_string(p.path().join("comm")).unwrap_or_default();
            out.push(format!("open by pid {pid} ({})", comm.trim()));
        }
    }
    out.sort();
    out
}

/// Findings of `blkid -p -o export DEV` output (TYPE=, PTTYPE=...).
pub fn blkid_findings(export: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in export.lines() {
        if let Some((k, v)) = line.split_once('=') {
            if matches!(k, "TYPE" | "PTTYPE" | "SEC_TYPE") {
                out.push(format!("blkid finds {k}={v}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1 << 20;

    fn blank_dev() -> (Vec<u8>, Vec<u8>) {
        (vec![0u8; MIB], vec![0u8; MIB])
    }

    fn put(buf: &mut [u8], off: usize, bytes: &[u8]) {
        buf[off..off + bytes.len()].copy_from_slice(bytes);
    }

    #[test]
    fn a_blank_device_is_clean() {
        let (h, t) = blank_dev();
        assert!(scan_signatures(&h, &t).is_empty());
        assert!(scan_signatures(&vec![0xff; MIB], &vec![0xff; MIB]).is_empty());
    }

    #[test]
    fn every_signature_is_named() {
        let cases: &[(usize, &[u8], &str)] = &[
            (510, &[0x55, 0xAA], "MBR"),
            (512, b"EFI PART", "GPT"),
            (4096, b"EFI PART", "GPT"),
            (1080, &[0x53, 0xEF], "ext2/3/4"),
            (0, b"XFSB", "XFS"),
            (0x10040, b"_BHRfS_M", "btrfs"),
            (512, b"LABELONE", "LVM2"),
            (4086, b"SWAPSPACE2", "swap"),
            (65526, b"SWAP-SPACE", "swap"),
            (0, b"LUKS\xba\xbe", "LUKS"),
            (4096, &[0xfc, 0x4e, 0x2b, 0xa9], "RAID"),
            (1024, &[0x10, 0x20, 0xF5, 0xF2], "F2FS"),
            (3, b"NTFS    ", "NTFS"),
            (32769, b"CD001", "ISO 9660"),
            (132 * 1024, &[0x0c, 0xb1, 0xba, 0x00], "ZFS"),
        ];
        for &(off, magic, name) in cases {
            let (mut h, t) = blank_dev();
            put(&mut h, off, magic);
            let f = scan_signatures(&h, &t);
            assert!(f.iter().any(|s| s.contains(name)), "{name} at {off}: {f:?}");
            assert!(!f.iter().any(|s| s.contains("unrecognised")), "{f:?}");
        }
    }

    #[test]
    fn end_of_device_signatures() {
        let (h, mut t) = blank_dev();
        put(&mut t, MIB - 512, b"EFI PART");
        assert!(scan_signatures(&h, &t)[0].contains("backup GPT"));
        let (h, mut t) = blank_dev();
        put(&mut t, MIB - 8192, &[0xfc, 0x4e, 0x2b, 0xa9]);
        assert!(scan_signatures(&h, &t)[0].contains("RAID"));
    }

    #[test]
    fn any_other_data_is_refused_too() {
        let (mut h, t) = blank_dev();
        h[777] = 1;
        let f = scan_signatures(&h, &t);
        assert_eq!(f.len(), 1);
        assert!(
            f[0].contains("first MiB") && f[0].contains("byte 777"),
            "{f:?}"
        );
        let (h, mut t) = blank_dev();
        t[5] = 0x42;
        assert!(scan_signatures(&h, &t)[0].contains("last MiB"));
    }

    #[test]
    fn small_devices_are_scanned_without_panicking() {
        let small = vec![0u8; 600];
        assert!(scan_signatures(&small, &small).is_empty());
        let mut mbr = small.clone();
        put(&mut mbr, 510, &[0x55, 0xAA]);
        assert!(!scan_signatures(&mbr, &mbr).is_empty());
        assert!(scan_signatures(&[], &[]).is_empty());
    }

    #[test]
    fn blkid_export_output() {
        let out = "DEVNAME=/dev/loop0\nUUID=abc\nBLOCK_SIZE=4096\nTYPE=ext4\n";
        assert_eq!(blkid_findings(out), vec!["blkid finds TYPE=ext4"]);
        assert!(blkid_findings("").is_empty());
    }

    #[test]
    fn non_block_devices_are_refused() {
        let roots = Roots::host();
        let i = inspect(&roots, Path::new("/dev/null"));
        assert_eq!(i.findings, vec!["not a block device"]);
        assert!(!i.is_safe());
        assert!(i.refusal().starts_with("refusing to write to /dev/null: "));
        let i = inspect(&roots, Path::new("/nonexistent/dev"));
        assert!(i.findings[0].starts_with("cannot stat it"));
    }
}

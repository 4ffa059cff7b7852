//! hostPath type checks (upstream's `pkg/volume/hostpath/host_path.go`
//! `checkType`): `DirectoryOrCreate` and `FileOrCreate` create what is
//! missing, the other types must already be there.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;

/// Checks (and for the `…OrCreate` types makes) `path` as `ty` says; the
/// error is upstream's message.
pub fn check_type(path: &Path, ty: Option<&str>) -> Result<(), String> {
    let p = path.display();
    let meta = std::fs::metadata(path).ok();
    let ft = meta.as_ref().map(|m| m.file_type());
    match ty.unwrap_or_default() {
        "" => Ok(()),
        "DirectoryOrCreate" if meta.is_none() => std::fs::create_dir_all(path)
            .and_then(|()| std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)))
            .map_err(|e| format!("hostPath type check failed: creating directory {p}: {e}")),
        "DirectoryOrCreate" | "Directory" => match ft {
            Some(t) if t.is_dir() => Ok(()),
            _ => Err(format!(
                "hostPath type check failed: {p} is not a directory"
            )),
        },
        "FileOrCreate" if meta.is_none() => std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|_| std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)))
            .map_err(|e| format!("hostPath type check failed: creating file {p}: {e}")),
        "FileOrCreate" | "File" => match ft {
            Some(t) if t.is_file() => Ok(()),
            _ => Err(format!("hostPath type check failed: {p} is not a file")),
        },
        "Socket" => match ft {
            Some(t) if t.is_socket() => Ok(()),
            _ => Err(format!(
                "hostPath type check failed: {p} is not a socket file"
            )),
        },
        "CharDevice" => match ft {
            Some(t) if t.is_char_device() => Ok(()),
            _ => Err(format!(
                "hostPath type check failed: {p} is not a character device"
            )),
        },
        "BlockDevice" => match ft {
            Some(t) if t.is_block_device() => Ok(()),
            _ => Err(format!(
                "hostPath type check failed: {p} is not a block device"
            )),
        },
        other => Err(format!("{other} is an invalid volume type")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn types() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("d");
        let f = dir.path().join("f");
        assert!(check_type(&d, Some("Directory"))
            .unwrap_err()
            .ends_with("is not a directory"));
        check_type(&d, Some("DirectoryOrCreate")).unwrap();
        assert!(d.is_dir());
        check_type(&d, Some("Directory")).unwrap();
        assert_eq!(
            check_type(&d, Some("File")).unwrap_err(),
            format!("hostPath type check failed: {} is not a file", d.display())
        );
        check_type(&f, Some("FileOrCreate")).unwrap();
        assert!(f.is_file());
        check_type(&f, Some("File")).unwrap();
        assert!(check_type(&f, Some("DirectoryOrCreate")).is_err());
        assert!(check_type(&f, Some("Socket"))
            .unwrap_err()
            .ends_with("is not a socket file"));
        check_type(Path::new("/dev/null"), Some("CharDevice")).unwrap();
        assert!(check_type(&f, Some("BlockDevice")).is_err());
        check_type(&dir.path().join("nothing"), None).unwrap();
        assert_eq!(
            check_type(&f, Some("Weird")).unwrap_err(),
            "Weird is an invalid volume type"
        );
    }
}

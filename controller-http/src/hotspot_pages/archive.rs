//! The hotspot directory as a zip, one folder inside, so unpacking it gives the folder an
//! operator drags into Winbox's Files window or uploads by FTP.

use mikrobill_protocol::messages::HotspotFile;
use std::io::Write;
use zip::write::SimpleFileOptions;

/// The folder inside the zip, named as the agent names the directory on the router.
pub const ZIP_DIR: &str = "hotspot-mikrobill";

/// Packs the files into a zip held in memory (a few kilobytes).
pub fn zip(files: &[HotspotFile]) -> Result<Vec<u8>, zip::result::ZipError> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for f in files {
        writer.start_file(format!("{ZIP_DIR}/{}", f.name), options)?;
        writer.write_all(f.contents.as_bytes())?;
    }
    Ok(writer.finish()?.into_inner())
}

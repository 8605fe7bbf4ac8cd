//! The pixel size of a JPEG from its frame header, without decoding it (the manager has no
//! image decoder; the size is all the video needs from it).

/// (width, height) of a baseline or progressive JPEG; `None` when `bytes` is not one.
pub fn jpeg_size(bytes: &[u8]) -> Option<(u32, u32)> {
    if bytes.get(..2) != Some(&[0xFF, 0xD8]) {
        return None;
    }
    let mut at = 2;
    loop {
        // Markers may be padded with extra 0xFF bytes.
        while bytes.get(at) == Some(&0xFF) && bytes.get(at + 1) == Some(&0xFF) {
            at += 1;
        }
        if *bytes.get(at)? != 0xFF {
            return None;
        }
        let marker = *bytes.get(at + 1)?;
        at += 2;
        // Markers without a length: TEM and the restart markers.
        if marker == 0x01 || (0xD0..=0xD7).contains(&marker) {
            continue;
        }
        let length = usize::from(u16::from_be_bytes([*bytes.get(at)?, *bytes.get(at + 1)?]));
        if length < 2 {
            return None;
        }
        // SOF0..SOF15, except DHT (C4), JPG (C8) and DAC (CC).
        if (0xC0..=0xCF).contains(&marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC) {
            let header = bytes.get(at + 2..at + 7)?;
            let height = u32::from(u16::from_be_bytes([header[1], header[2]]));
            let width = u32::from(u16::from_be_bytes([header[3], header[4]]));
            return (width > 0 && height > 0).then_some((width, height));
        }
        if marker == 0xDA || marker == 0xD9 {
            return None; // image data or the end came before any frame header
        }
        at += length;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A JPEG's markers up to its frame header, as FFmpeg and libjpeg write them.
    fn jpeg(width: u16, height: u16, sof: u8) -> Vec<u8> {
        let mut bytes = vec![0xFF, 0xD8];
        // APP0 (JFIF), 16 bytes long.
        bytes.extend([0xFF, 0xE0, 0x00, 0x10]);
        bytes.extend(b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0");
        // A padding byte before the next marker.
        bytes.extend([0xFF, 0xFF, sof, 0x00, 0x11, 0x08]);
        bytes.extend(height.to_be_bytes());
        bytes.extend(width.to_be_bytes());
        bytes.extend([0x03, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
        bytes.extend([0xFF, 0xDA, 0x00, 0x02, 0xFF, 0xD9]);
        bytes
    }

    #[test]
    fn baseline_and_progressive_headers_give_the_size() {
        assert_eq!(jpeg_size(&jpeg(64, 48, 0xC0)), Some((64, 48)));
        assert_eq!(jpeg_size(&jpeg(1280, 721, 0xC2)), Some((1280, 721)));
    }

    #[test]
    fn other_bytes_give_none() {
        assert_eq!(jpeg_size(b""), None);
        assert_eq!(jpeg_size(b"\x89PNG\r\n"), None);
        assert_eq!(jpeg_size(&jpeg(0, 48, 0xC0)), None);
        let cut = jpeg(64, 48, 0xC0);
        assert_eq!(jpeg_size(&cut[..cut.len() - 20]), None);
        // No frame header before the image data.
        assert_eq!(jpeg_size(&[0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02]), None);
    }
}

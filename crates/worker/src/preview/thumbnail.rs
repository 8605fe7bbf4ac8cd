//! Rendered frames as JPEG thumbnails: PNG and JPEG are decoded, scaled down to at most
//! [`MAX_WIDTH`] pixels wide and encoded at quality [`JPEG_QUALITY`]. Other formats (EXR,
//! TIFF, …) are not previewed.

use std::io::Cursor;
use std::path::Path;

use image::ImageReader;
use image::codecs::jpeg::JpegEncoder;
use image::imageops::FilterType;

/// Widest thumbnail sent to the manager.
pub const MAX_WIDTH: u32 = 1280;
/// JPEG quality of thumbnails.
pub const JPEG_QUALITY: u8 = 85;

/// Why a thumbnail could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ThumbnailError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot decode or encode {path}: {source}")]
    Image {
        path: String,
        #[source]
        source: image::ImageError,
    },
}

/// The JPEG thumbnail of the image at `path`; `None` for formats that are not previewed.
pub fn thumbnail(path: &Path) -> Result<Option<Vec<u8>>, ThumbnailError> {
    let extension = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    if !matches!(extension.as_str(), "png" | "jpg" | "jpeg") {
        return Ok(None);
    }
    let shown = || path.display().to_string();
    let reader = ImageReader::open(path)
        .and_then(ImageReader::with_guessed_format)
        .map_err(|source| ThumbnailError::Read {
            path: shown(),
            source,
        })?;
    let image = reader.decode().map_err(|source| ThumbnailError::Image {
        path: shown(),
        source,
    })?;
    let image = if image.width() > MAX_WIDTH {
        let height = (u64::from(image.height()) * u64::from(MAX_WIDTH) / u64::from(image.width()))
            .max(1) as u32;
        image.resize_exact(MAX_WIDTH, height, FilterType::Triangle)
    } else {
        image
    };
    // JPEG has no alpha channel.
    let rgb = image.to_rgb8();
    let mut jpeg = Cursor::new(Vec::new());
    JpegEncoder::new_with_quality(&mut jpeg, JPEG_QUALITY)
        .encode_image(&rgb)
        .map_err(|source| ThumbnailError::Image {
            path: shown(),
            source,
        })?;
    Ok(Some(jpeg.into_inner()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wide_pngs_are_scaled_down_to_jpeg() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let png = dir.path().join("wide.png");
        image::RgbaImage::from_pixel(2000, 100, image::Rgba([200, 10, 10, 128])).save(&png)?;
        let jpeg = thumbnail(&png)?.ok_or("a PNG is previewed")?;
        assert_eq!(&jpeg[..2], &[0xFF, 0xD8], "JPEG magic");
        let decoded = image::load_from_memory(&jpeg)?;
        assert_eq!((decoded.width(), decoded.height()), (1280, 64));

        let small = dir.path().join("small.png");
        image::RgbImage::new(64, 48).save(&small)?;
        let decoded = image::load_from_memory(&thumbnail(&small)?.ok_or("previewed")?)?;
        assert_eq!((decoded.width(), decoded.height()), (64, 48));
        Ok(())
    }

    #[test]
    fn other_formats_are_skipped_and_broken_files_are_errors()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let exr = dir.path().join("frame.exr");
        std::fs::write(&exr, b"not read at all")?;
        assert!(thumbnail(&exr)?.is_none());
        let broken = dir.path().join("broken.png");
        std::fs::write(&broken, b"not a png")?;
        assert!(thumbnail(&broken).is_err());
        assert!(thumbnail(&dir.path().join("absent.png")).is_err());
        Ok(())
    }
}

//! What waits to be uploaded: every numbered frame, in order (the manager keeps each one),
//! and the newest unnumbered image (only the newest is kept anyway). Only paths wait here;
//! thumbnails are made when a frame's turn comes.
use std::collections::VecDeque;
use std::path::PathBuf;

/// Most numbered frames waiting at once; a task saving more while the manager cannot be
/// reached loses the excess from its frame grid and video (they stay black), not memory.
pub const MAX_QUEUED_FRAMES: usize = 10_000;

/// A freshly saved image, with its frame number when the command knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offer {
    pub path: PathBuf,
    pub frame: Option<i64>,
}

#[derive(Debug, Default)]
pub struct Pending {
    numbered: VecDeque<(i64, PathBuf)>,
    newest: Option<PathBuf>,
    /// Numbered frames not queued because the queue was full.
    pub dropped: u64,
}

impl Pending {
    pub fn add(&mut self, offer: Offer) {
        match offer.frame {
            Some(frame) => {
                // A numbered frame is newer than any unnumbered image waiting.
                self.newest = None;
                if self.numbered.len() < MAX_QUEUED_FRAMES {
                    self.numbered.push_back((frame, offer.path));
                } else {
                    self.dropped += 1;
                }
            }
            None => self.newest = Some(offer.path),
        }
    }

    /// The next image to upload: numbered frames first, in the order they were saved.
    pub fn next(&mut self) -> Option<Offer> {
        if let Some((frame, path)) = self.numbered.pop_front() {
            return Some(Offer {
                path,
                frame: Some(frame),
            });
        }
        self.newest.take().map(|path| Offer { path, frame: None })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(path: &str, frame: Option<i64>) -> Offer {
        Offer {
            path: path.into(),
            frame,
        }
    }

    #[test]
    fn numbered_frames_all_wait_in_order_and_unnumbered_ones_only_the_newest() {
        let mut pending = Pending::default();
        pending.add(offer("a", None));
        pending.add(offer("b", None));
        assert_eq!(pending.next(), Some(offer("b", None)));
        assert_eq!(pending.next(), None);

        pending.add(offer("c", None));
        pending.add(offer("1", Some(1)));
        pending.add(offer("2", Some(2)));
        pending.add(offer("d", None));
        assert_eq!(pending.next(), Some(offer("1", Some(1))));
        assert_eq!(pending.next(), Some(offer("2", Some(2))));
        // "c" was older than frame 1; "d" came after frame 2.
        assert_eq!(pending.next(), Some(offer("d", None)));
        assert_eq!(pending.next(), None);
    }

    #[test]
    fn a_full_queue_counts_what_it_could_not_keep() {
        let mut pending = Pending::default();
        for frame in 0..MAX_QUEUED_FRAMES as i64 + 3 {
            pending.add(offer("f", Some(frame)));
        }
        assert_eq!(pending.dropped, 3);
        assert_eq!(pending.next().and_then(|o| o.frame), Some(0));
    }
}

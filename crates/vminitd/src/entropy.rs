//! Host randomness into the guest's random generator.
//!
//! A VM restored from a template starts with the template's generator
//! state, the same in every VM restored from it. The host sends fresh bytes;
//! they are added to the input pool with full credit (`RNDADDENTROPY`), and
//! the generator is reseeded at once (`RNDRESEEDCRNG`) rather than at its
//! next scheduled reseed, so what the guest draws next differs per VM.

use std::os::fd::AsRawFd;

use tonic::Status;

/// The fewest bytes accepted: one full reseed's worth.
pub(crate) const MIN_BYTES: usize = 32;
/// The most bytes accepted.
pub(crate) const MAX_BYTES: usize = 4096;

/// `RNDADDENTROPY` from `<linux/random.h>`: `_IOW('R', 0x03, int[2])`.
const RNDADDENTROPY: u32 = 0x4008_5203;
/// `RNDRESEEDCRNG` from `<linux/random.h>`: `_IO('R', 0x07)`.
const RNDRESEEDCRNG: u32 = 0x5207;

/// Adds `data`, credited, and reseeds.
pub(crate) fn add(data: &[u8]) -> Result<(), Status> {
    if !(MIN_BYTES..=MAX_BYTES).contains(&data.len()) {
        return Err(Status::invalid_argument(format!(
            "entropy must be {MIN_BYTES} to {MAX_BYTES} bytes, not {}",
            data.len()
        )));
    }
    let random = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/urandom")
        .map_err(|e| crate::filesystem::io_status("/dev/urandom", e))?;
    // struct rand_pool_info { int entropy_count; int buf_size; __u32 buf[]; },
    // built as words so the buffer is aligned for the kernel's view.
    let mut words = vec![(data.len() * 8) as u32, data.len() as u32];
    words.extend(data.chunks(4).map(|chunk| {
        let mut word = [0u8; 4];
        word[..chunk.len()].copy_from_slice(chunk);
        u32::from_ne_bytes(word)
    }));
    let fd = random.as_raw_fd();
    // SAFETY: `fd` is open; `words` is a rand_pool_info whose buf_size
    // matches the bytes that follow its header, and outlives the call.
    let added = unsafe { libc::ioctl(fd, RNDADDENTROPY as _, words.as_ptr()) };
    if added != 0 {
        return Err(crate::filesystem::io_status(
            "RNDADDENTROPY",
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: `fd` is open; RNDRESEEDCRNG takes no argument.
    let reseeded = unsafe { libc::ioctl(fd, RNDRESEEDCRNG as _, 0) };
    if reseeded != 0 {
        return Err(crate::filesystem::io_status(
            "RNDRESEEDCRNG",
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_little_or_too_much_is_refused_by_size() {
        let err = add(&[0u8; 8]).unwrap_err();
        assert!(err.message().contains("not 8"), "{}", err.message());
        let err = add(&vec![0u8; MAX_BYTES + 1]).unwrap_err();
        assert!(err.message().contains("4096"), "{}", err.message());
    }
}

//! Calls into third-party parsers of hostile bytes, whose panics become errors: the panic is
//! caught, and its message is not printed (the default hook writes every panic to stderr, so a
//! damaged volume put "thread panicked at …" lines from a crate's source in the user's
//! terminal, next to the error that already says what failed and where).
//!
//! The first call installs a panic hook that stays silent while the panicking thread is inside
//! [`catch`] and passes every other panic to the hook that was there before.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Once;

thread_local! {
    /// How deep this thread is in [`catch`] calls.
    static DEPTH: Cell<u32> = const { Cell::new(0) };
}

static HOOK: Once = Once::new();

/// Run `f`; a panic in it is `Err` (its payload), without a message on stderr.
pub fn catch<T>(f: impl FnOnce() -> T) -> std::thread::Result<T> {
    HOOK.call_once(|| {
        let before = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if DEPTH.with(Cell::get) == 0 {
                before(info);
            }
        }));
    });
    DEPTH.with(|d| d.set(d.get().saturating_add(1)));
    let r = catch_unwind(AssertUnwindSafe(f));
    DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
    r
}

/// A reader from a third-party parser whose reads and seeks go through [`catch`]: a panic is
/// an I/O error on that call.
pub struct Caught<R>(pub R);

fn failed(_: Box<dyn std::any::Any + Send>) -> std::io::Error {
    std::io::Error::other("the parser failed on malformed input")
}

impl<R: std::io::Read> std::io::Read for Caught<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        catch(|| self.0.read(buf)).unwrap_or_else(|p| Err(failed(p)))
    }
}

impl<R: std::io::Seek> std::io::Seek for Caught<R> {
    fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
        catch(|| self.0.seek(pos)).unwrap_or_else(|p| Err(failed(p)))
    }
}

#[cfg(test)]
mod tests {
    use super::catch;

    #[test]
    fn a_panic_is_an_error_and_nested_calls_keep_counting() {
        let r: std::thread::Result<()> = catch(|| panic!("malformed"));
        let payload = r.unwrap_err();
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"malformed"));
        assert_eq!(catch(|| catch(|| 7).unwrap() + 1).unwrap(), 8);
        let inner = catch(|| catch(|| -> u8 { panic!("inner") }).is_err());
        assert_eq!(inner.ok(), Some(true));
        super::DEPTH.with(|d| assert_eq!(d.get(), 0));
    }

    #[test]
    fn a_reader_that_panics_gives_an_io_error() {
        struct Bad;
        impl std::io::Read for Bad {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                panic!("index out of bounds")
            }
        }
        let mut r = super::Caught(Bad);
        let e = std::io::Read::read(&mut r, &mut [0u8; 4]).unwrap_err();
        assert!(e.to_string().contains("malformed input"), "{e}");
    }
}

//! Handing a connected Unix stream socket to glommio's reactor.

use std::os::fd::{FromRawFd, IntoRawFd};

/// Adopts `socket` into the glommio executor running on this thread, so that reads on it are
/// io_uring operations that let the executor sleep until bytes arrive.
///
/// Must be called on a glommio executor thread (glommio panics otherwise).
pub fn glommio_unix_stream(socket: std::os::unix::net::UnixStream) -> glommio::net::UnixStream {
    let fd = socket.into_raw_fd();
    // SAFETY: `fd` comes from `into_raw_fd` on a Unix stream socket we owned, so it is open, of
    // the type glommio's `UnixStream` expects, and no one else will close it: ownership passes
    // to the returned value exactly once.
    unsafe { glommio::net::UnixStream::from_raw_fd(fd) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use glommio::LocalExecutorBuilder;
    use std::io::Write;

    #[test]
    fn bytes_written_outside_wake_the_executor() {
        let (mut outside, inside) = std::os::unix::net::UnixStream::pair().expect("socketpair");
        let writer = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(20));
            outside.write_all(&[1, 2]).expect("write wake bytes");
        });
        let received = LocalExecutorBuilder::default()
            .spawn(move || async move {
                let mut stream = glommio_unix_stream(inside);
                let mut buf = [0u8; 8];
                let mut received = 0;
                while received < 2 {
                    received += futures_lite::AsyncReadExt::read(&mut stream, &mut buf[received..])
                        .await
                        .expect("read wake bytes");
                }
                buf[..received].to_vec()
            })
            .expect("executor starts")
            .join()
            .expect("executor finishes");
        writer.join().expect("writer thread");
        assert_eq!(received, vec![1, 2]);
    }
}

//! gochat-loadgen: the black-box load generator. It arrives with the edge issue
//! (it drives WebSocket connections); until then it only says so.

fn main() {
    eprintln!("gochat-loadgen: not available yet; it arrives with the edge gateway");
    std::process::exit(2);
}

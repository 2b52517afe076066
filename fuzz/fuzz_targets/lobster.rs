//! The LOBSTER CSV parser and converter: the input is a message file and an order-book file
//! split at the first NUL byte; both parsed, converted when they parse, and the ITCH written
//! replayed into books.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tickwatch::book::{BookConfig, Books};
use tickwatch::lobster::{convert_parsed, Messages, OrderBook};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (msgs, book) = text.split_once('\0').unwrap_or((text, ""));
    let m = Messages::parse(msgs, "m.csv");
    let b = OrderBook::parse(book, "b.csv");
    let (Ok(m), Ok(b)) = (m, b) else { return };
    let Ok((itch, _report)) = convert_parsed(&m, &b, "FUZZ", "2012-06-21", Vec::new()) else {
        return;
    };
    let mut books = Books::new(BookConfig::for_orders(1 << 12, 8));
    tickwatch::replay::replay(&itch, &mut books, None, false).expect("the converter writes ITCH");
});

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fibermade_sync_fuzz::function_url_event(data));

//! Fuzz the model-file reader: any text must give `Ok` or `Err` from parsing, and a parsed
//! model must build (for MNIST-shaped input) or fail with an error, never panic, overflow or
//! allocate without bound (`MAX_VALUES`, `MAX_SIZE` in `bnlab::model_file`).
#![no_main]

use bnlab::model_file::ModelFile;
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(model) = ModelFile::from_text(text.to_string(), Path::new("fuzz.txt")) else {
        return;
    };
    let mut g = bnlab::Graph::new(0);
    if let Ok(net) = model.build(&[1, 1, 28, 28], &mut g.params, &mut bnlab::Rng::seed(0)) {
        // a built model can be described
        let _ = bnlab::summary::summary(&net, &g.params, &[1, 1, 28, 28]);
    }
});

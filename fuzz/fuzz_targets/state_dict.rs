//! Fuzz the state-dict loader: any bytes go through the safetensors reader and, when they
//! parse, through a strict `load_state_dict` into the seed's BNModel. Neither may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::cell::RefCell;
use std::path::Path;

thread_local! {
    /// The seed model (784-256-128-64-10 with BatchNorm1d), built once per process: building it
    /// initialises ~235k weights, far slower than one fuzz input.
    static MODEL: RefCell<(bnlab::Graph, bnlab::nn::Net)> = RefCell::new({
        let mut g = bnlab::Graph::new(0);
        let net = bnlab::presets::Preset::Bn
            .build(&mut g.params, 1, 28, &mut bnlab::Rng::seed(0))
            .unwrap();
        (g, net)
    });
}

fuzz_target!(|data: &[u8]| {
    let Ok(file) = bnlab::io::read_safetensors_bytes(data, Path::new("fuzz.safetensors")) else {
        return;
    };
    MODEL.with(|m| {
        let (g, net) = &mut *m.borrow_mut();
        let _ = bnlab::state_dict::load_state_dict(net, &mut g.params, &file.tensors, "");
    });
});

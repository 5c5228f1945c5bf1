//! Which bfloat16 kernel this CPU runs: decided once per process.
//!
//! - AMX (`TDPBF16PS`) needs the CPUID bits AMX-TILE and AMX-BF16 (leaf 7, EDX bits 24 and 22;
//!   the standard library's `is_x86_feature_detected!` cannot name them on stable Rust) and, on
//!   Linux, the kernel's permission to use the 8 KiB tile state: `arch_prctl(ARCH_REQ_XCOMP_PERM,
//!   XFEATURE_XTILEDATA)` once per process. Without that request the first tile instruction
//!   kills the process with SIGILL; a kernel older than 5.16 refuses it, and then AMX is off.
//! - AVX512-BF16 (`VDPBF16PS`) needs `avx512bf16` and `avx512f`, which the standard library
//!   detects (including the operating system's support for the 512-bit state).
//!
//! The environment variable `BNLAB_BF16_KERNEL` may force a choice: `amx`, `avx512` (to run or
//! benchmark one kernel against the other) or `none` (to see the emulation's refusal line).
//! Asking for a kernel this CPU lacks is an error naming what is missing, never a silent
//! fallback.

use super::Bf16Kernel;
use std::sync::OnceLock;

/// The environment variable that forces a kernel: `amx`, `avx512` or `none`.
pub const KERNEL_ENV: &str = "BNLAB_BF16_KERNEL";

/// What this CPU and operating system allow: AMX (or why not) and AVX512-BF16.
#[derive(Clone, Debug)]
pub(super) struct Caps {
    /// `Ok` when the tile instructions may run in this process, else why not.
    pub amx: Result<(), String>,
    /// Whether `VDPBF16PS` (with AVX512F) runs here.
    pub avx512_bf16: bool,
}

/// The kernels this CPU and operating system can run, best first, whatever `BNLAB_BF16_KERNEL`
/// says (the tests run each of them against the emulation).
pub fn cpu_kernels() -> Vec<Bf16Kernel> {
    let caps = caps();
    let mut kernels = Vec::new();
    if caps.amx.is_ok() {
        kernels.push(Bf16Kernel::Amx);
    }
    if caps.avx512_bf16 {
        kernels.push(Bf16Kernel::Avx512Bf16);
    }
    kernels
}

/// Whether this CPU and operating system can run `kernel` (without building [`cpu_kernels`]'s
/// list: [`super::matmul_on`] asks on every call).
pub fn cpu_has(kernel: Bf16Kernel) -> bool {
    match kernel {
        Bf16Kernel::Amx => caps().amx.is_ok(),
        Bf16Kernel::Avx512Bf16 => caps().avx512_bf16,
    }
}

/// The kernel [`super::matmul`] runs, or one line saying what this CPU lacks (or what is wrong
/// with `BNLAB_BF16_KERNEL`). Decided once per process.
pub fn kernel() -> Result<Bf16Kernel, String> {
    static CHOICE: OnceLock<Result<Bf16Kernel, String>> = OnceLock::new();
    CHOICE
        .get_or_init(|| choose(std::env::var(KERNEL_ENV).ok().as_deref(), caps()))
        .clone()
}

/// The choice itself, from the variable's value (if set) and the CPU's capabilities.
pub(super) fn choose(forced: Option<&str>, caps: &Caps) -> Result<Bf16Kernel, String> {
    let lacks_both = || {
        let amx_note = match &caps.amx {
            Ok(()) => String::new(),
            Err(why) => format!(" ({why})"),
        };
        format!(
            "this CPU has neither AMX-BF16{amx_note} nor AVX512-BF16: --precision bf16 would only \
             be emulated, slowly"
        )
    };
    match forced.map(str::trim) {
        None | Some("") => {
            if caps.amx.is_ok() {
                Ok(Bf16Kernel::Amx)
            } else if caps.avx512_bf16 {
                Ok(Bf16Kernel::Avx512Bf16)
            } else {
                Err(lacks_both())
            }
        }
        Some("amx") => match &caps.amx {
            Ok(()) => Ok(Bf16Kernel::Amx),
            Err(why) => Err(format!("{KERNEL_ENV}=amx, but AMX cannot run here: {why}")),
        },
        Some("avx512") if caps.avx512_bf16 => Ok(Bf16Kernel::Avx512Bf16),
        Some("avx512") => Err(format!(
            "{KERNEL_ENV}=avx512, but this CPU has no AVX512-BF16"
        )),
        Some("none") => Err(format!(
            "{KERNEL_ENV}=none switches the bfloat16 kernels off: --precision bf16 would only be \
             emulated, slowly"
        )),
        Some(other) => Err(format!(
            "{KERNEL_ENV}={other}: expected amx, avx512 or none"
        )),
    }
}

/// The capabilities, probed once per process (the AMX permission request included).
pub(super) fn caps() -> &'static Caps {
    static CAPS: OnceLock<Caps> = OnceLock::new();
    CAPS.get_or_init(probe)
}

#[cfg(target_arch = "x86_64")]
fn probe() -> Caps {
    Caps {
        amx: amx_allowed(),
        avx512_bf16: std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bf16"),
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn probe() -> Caps {
    Caps {
        amx: Err("not an x86-64 CPU".to_string()),
        avx512_bf16: false,
    }
}

/// Whether AMX tiles may run: the CPUID bits, then the operating system's permission.
#[cfg(target_arch = "x86_64")]
fn amx_allowed() -> Result<(), String> {
    use std::arch::x86_64::__cpuid_count;
    // leaf 7 exists when leaf 0 reports it; EDX bit 22 = AMX-BF16, bit 24 = AMX-TILE
    // SAFETY: CPUID is available on every x86-64 CPU.
    let max_leaf = __cpuid_count(0, 0).eax;
    let edx = if max_leaf >= 7 {
        __cpuid_count(7, 0).edx
    } else {
        0
    };
    let (bf16, tile) = (edx >> 22 & 1 == 1, edx >> 24 & 1 == 1);
    if !(bf16 && tile) {
        return Err("no AMX tiles".to_string());
    }
    request_tile_permission()
}

/// Linux: ask for the tile data state once per process (every thread inherits it).
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn request_tile_permission() -> Result<(), String> {
    const SYS_ARCH_PRCTL: isize = 158;
    const ARCH_REQ_XCOMP_PERM: usize = 0x1023;
    const XFEATURE_XTILEDATA: usize = 18;
    let ret: isize;
    // SAFETY: arch_prctl(ARCH_REQ_XCOMP_PERM, 18) only changes which state components this
    // process may use; the syscall instruction clobbers rcx and r11 and nothing else.
    unsafe {
        std::arch::asm!(
            "syscall",
            inlateout("rax") SYS_ARCH_PRCTL => ret,
            in("rdi") ARCH_REQ_XCOMP_PERM,
            in("rsi") XFEATURE_XTILEDATA,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    if ret == 0 {
        Ok(())
    } else {
        Err(format!(
            "Linux refused the tile state (arch_prctl ARCH_REQ_XCOMP_PERM: errno {})",
            -ret
        ))
    }
}

/// Other systems: bnlab has no way to ask, so it does not use the tiles.
#[cfg(all(target_arch = "x86_64", not(target_os = "linux")))]
fn request_tile_permission() -> Result<(), String> {
    Err("AMX is only enabled on Linux".to_string())
}

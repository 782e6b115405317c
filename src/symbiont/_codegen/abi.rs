// ---------------------------------------------------------------- shared ABI
// The one declaration of what the dispatcher trampoline (load/trampoline.rs) and every revision
// library (rt.rs) exchange. Both sources are built with this text prepended (see
// `symbiont._codegen.abi_source`), and it is part of every content hash that keys a cached
// trampoline, runtime crate or revision library, so the two sides cannot drift apart.

pub type Ssize = isize;

/// The non-free-threaded object header (symbiont refuses free-threaded builds at import).
#[repr(C)]
pub struct PyObject {
    pub ob_refcnt: Ssize,
    pub ob_type: *mut std::ffi::c_void,
}

pub type Obj = *mut PyObject;

/// The head of the trampoline's Slot: the `self` every entry receives. The trampoline asserts at
/// compile time that its Slot starts with exactly these fields.
#[repr(C)]
pub struct SlotHead {
    pub ob_base: PyObject,
    pub entry: *mut std::ffi::c_void,
    pub keeper: Obj,
    pub timeout_ns: u64,
    /// `SLOT_RELEASE_GIL`: the entry releases the GIL around the candidate's code.
    pub flags: u64,
}

/// A dispatcher flag: calls through it release the GIL while the candidate's code runs.
pub const SLOT_RELEASE_GIL: u64 = 1;

/// Per-thread record owned by the trampoline, never freed.
#[repr(C)]
pub struct Record {
    /// Non-zero when the watchdog stopped the armed call: the low 32 bits of the `seq` it was
    /// raised for, so a flag raised for a call that has already ended never stops the next one.
    pub flag: std::sync::atomic::AtomicU32,
    /// Odd while a call is armed; bumped at arm and at disarm.
    pub seq: std::sync::atomic::AtomicU64,
    pub timeout_ns: std::sync::atomic::AtomicU64,
    /// Lowest stack address guarded code may reach on this thread (0: unknown).
    pub stack_low: std::sync::atomic::AtomicUsize,
    /// Non-zero while this thread runs a call of the main thread that released the GIL (the
    /// main thread's own call, or an `rt.map` worker of it): Ctrl-C may stop it.
    pub interruptible: std::sync::atomic::AtomicU32,
}

/// The flag value that stops the call armed with `seq` (never 0: an armed seq is odd).
#[inline(always)]
pub fn flag_for(seq: u64) -> u32 {
    seq as u32
}

/// The table handed to revision libraries at init (`__symbiont_init`).
#[repr(C)]
pub struct Api {
    pub version: u32,
    /// Number of armed calls currently flagged, process-wide: guards read it in hot loops and
    /// only look at their own thread's record when it is not zero.
    pub pending: *const std::sync::atomic::AtomicU32,
    pub record: unsafe extern "C" fn() -> *mut Record,
    pub wake: unsafe extern "C" fn(),
    pub parked: *const std::sync::atomic::AtomicBool,
    /// Number of byte ranges lent to calls that released the GIL (`rt.map`); while it is 0 no
    /// call needs to consult the registry below.
    pub lent: *const std::sync::atomic::AtomicUsize,
    /// Lends `[start, start + len)` (mutably or not) to a call about to release the GIL; the GIL
    /// is held. Returns a ticket for `unlend`.
    pub lend: unsafe extern "C" fn(start: usize, len: usize, mutable: bool) -> usize,
    pub unlend: unsafe extern "C" fn(ticket: usize),
    /// Whether `[start, start + len)` conflicts with a lent range (either side mutable); the GIL
    /// is held.
    pub conflicts: unsafe extern "C" fn(start: usize, len: usize, mutable: bool) -> bool,
    /// Non-zero while a Ctrl-C (SIGINT) waits to stop the main thread's native call; it also
    /// counts in `pending`, so guards look only when it is raised.
    pub interrupt: *const std::sync::atomic::AtomicU32,
    /// Whether the calling thread runs the call the raised `interrupt` is for (it drops an
    /// interrupt that arrived while no native call of the main thread ran). Never unwinds.
    pub interrupt_claim: unsafe extern "C" fn() -> bool,
    /// Lowers `interrupt` once the stopped call has unwound.
    pub interrupt_done: unsafe extern "C" fn(),
    /// The main thread's record once Ctrl-C is caught (null before): a call that releases the
    /// GIL on it marks itself and its workers `interruptible`.
    pub main: *const std::sync::atomic::AtomicPtr<Record>,
}

pub const API_VERSION: u32 = 3;

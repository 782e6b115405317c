// symbiont runtime support: compiled once per toolchain and profile into the rlib `symbiont_rt`,
// which every generated library links from a private module (`__symbiont_glue`), so candidate
// code can name none of it. The shared ABI declarations (abi.rs) are prepended to this file.
//
// The generated library is its own CPython glue: the few C-API items it needs are declared by
// hand (stable-ABI subset, non-free-threaded object header), so building needs nothing but
// rustc. Fast paths stay in Rust; every error path calls back into the library's Python keeper
// object (`_coerce`, `_arity`, `_panic`, ...), which formats messages with full knowledge of the
// declaration.
//
// INVARIANT: no code of a library is unmapped while a call is running in it.
//
// What unmaps a library. Only symbiont's reaper (`reap()` in load/_library.py), which is Python
// code, and which unloads a library only after its keeper `k` died. The keeper owns only
// symbiont's own objects (no finalizers), so its death runs no Python code that could reap.
//
// What keeps a library mapped during a call. Either nothing can run `reap` until the call has
// returned (the GIL is held and no Python code runs), or the call holds a strong reference to
// `k`: the `Pin`, taken with `hold()` before the first operation that may run Python code.
// The dispatcher jumps into an entry without touching `k` (a reference count round trip there
// costs ~10% of a call), so every unpinned step must be proven to run no Python code.
//
// What may run Python code (so is pinned first): every keeper callback (all error paths);
// `__index__`/`__float__` of non-exact types (`arg_slow`); any creation of an exception, since
// an exception instance is a GC-tracked allocation, and a GC-tracked allocation may start a
// collection whose finalizers run arbitrary code (or let another thread take the GIL);
// `PyUnicode_AsUTF8AndSize` (it may build a UnicodeEncodeError, so `&str` always pins);
// acquiring and releasing a buffer (exporters, `bf_releasebuffer`, 3.12's `__release_buffer__`,
// the last reference to an exporter dropped by the release); building a list or tuple result;
// releasing the GIL (`run_map`, and `released` for a dispatcher with `SLOT_RELEASE_GIL`).
//
// Proven-safe unpinned fast paths. An exact `int` is converted with
// `PyLong_AsLongLongAndOverflow`, which sets no error for an exact int (out-of-range values,
// negative ones for unsigned types and those above i64::MAX take the pinned slow path); an exact
// `float` with `PyFloat_AsDouble`, which cannot fail for one; an exact one-character `str` for
// `char` with `PyUnicode_GetLength`/`PyUnicode_ReadChar`, which cannot fail for one; `bool` by
// identity. Scalar and `String` results are boxed with allocations that are not GC-tracked and,
// for valid UTF-8, raise nothing (the one exception: memory exhaustion while boxing). The
// watchdog arm/disarm, guards and the lent-memory count are atomics and run no Python code.
//
// Order of release. Within an entry: the call returns (every panic caught, payloads dropped
// inside `catch_unwind` by `fn release`), the deadline is disarmed, Cells are written back, then
// every buffer view is released, then the result is boxed, and the pin is dropped last:
// `finish` consumes the pin after the generated code has released the views (`View::release`),
// and boxes a result under the pin whenever the pin is held. Early returns drop the views
// before the pin because the pin is declared first. `run_map` lends its buffers before
// releasing the GIL and takes them back after reacquiring it, with the pin held throughout; its
// views drop before its pin. `released` does the same for one call of a dispatcher made to
// release the GIL: only the candidate's call runs without it, and conversions, `borrows`,
// write-back, view releases, boxing and panic reporting keep the GIL, in the order above.
//
// Ctrl-C. The trampoline's SIGINT handler raises `Api::interrupt` (counted in `pending`); the
// guard of the thread the interrupt is for (`interrupt_claim`: the main thread, or a thread
// marked `interruptible` by a main-thread call that released the GIL) unwinds with `CtrlC`, and
// the entry, with the GIL held and the pin taken, lowers it and runs Python's pending handler.
//
// Entry points reviewed against this: generated entries (`_crate.py` `_entry`): arity, scalar,
// str, slice and `&mut` conversions, the bool recheck, `borrows`, the call, write-back and
// `finish`, with `released` around the call when the slot says so; map entries
// (`_map_entry`): pinned from the first buffer on, `run_map`; Cell
// write-back (`cell_back`, pinned); returns (`finish`). The free-threaded build has no GIL and
// is refused at import.
//
// Memory given to Rust. A buffer argument becomes a `&[T]`/`&mut [T]` only if it is aligned,
// C-contiguous, of the exact element type, not aliased mutably by another argument, and not
// lent to a call in another thread that released the GIL (`borrows`); `bool` bytes are checked
// again after every argument is acquired, since a later argument may run Python code that
// writes them. The contract for lent memory: symbiont refuses its own calls on it (ValueError
// naming the argument); Python code that writes an array while a map call uses it (numpy in
// another thread) races with it exactly as with any numpy operation that releases the GIL.

use std::cell::Cell;
use std::ffi::{c_char, c_int, c_long, c_void};
use std::ptr::{addr_of_mut, null_mut};
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicUsize, Ordering};

/// A C object whose layout is never read: only its address is used.
#[repr(C)]
pub struct Opaque {
    _p: [u8; 0],
}

#[inline(always)]
unsafe fn is_exact(o: Obj, t: *mut Opaque) -> bool {
    (*o).ob_type == t as *mut c_void
}

/// Keeps the library's keeper alive from the first operation that may run Python code until
/// the entry point returns (see the invariant above).
pub struct Pin {
    k: Obj,
    held: bool,
}

impl Pin {
    /// # Safety
    /// `k` is the live keeper of the calling library, and the GIL is held until the pin drops.
    #[inline(always)]
    pub unsafe fn new(k: Obj) -> Pin {
        Pin { k, held: false }
    }
    #[inline(always)]
    unsafe fn hold(&mut self) -> Obj {
        if !self.held {
            unsafe { Py_IncRef(self.k) };
            self.held = true;
        }
        self.k
    }
}

impl Drop for Pin {
    #[inline(always)]
    fn drop(&mut self) {
        if self.held {
            unsafe { Py_DecRef(self.k) };
        }
    }
}

#[repr(C)]
pub struct PyBuffer {
    pub buf: *mut c_void,
    pub obj: Obj,
    pub len: Ssize,
    pub itemsize: Ssize,
    pub readonly: c_int,
    pub ndim: c_int,
    pub format: *mut c_char,
    pub shape: *mut Ssize,
    pub strides: *mut Ssize,
    pub suboffsets: *mut Ssize,
    pub internal: *mut c_void,
}

const PYBUF_WRITABLE: c_int = 0x0001;
const PYBUF_FORMAT: c_int = 0x0004;
const PYBUF_C_CONTIGUOUS: c_int = 0x0020 | 0x0010 | 0x0008;

extern "C" {
    fn PyLong_FromLong(v: i64) -> Obj;
    fn PyLong_FromUnsignedLongLong(v: u64) -> Obj;
    fn PyLong_AsLongLongAndOverflow(o: Obj, overflow: *mut c_int) -> i64;
    fn PyLong_AsUnsignedLongLong(o: Obj) -> u64;
    fn PyFloat_FromDouble(v: f64) -> Obj;
    fn PyFloat_AsDouble(o: Obj) -> f64;
    fn PyBool_FromLong(v: c_long) -> Obj;
    fn PyUnicode_FromStringAndSize(s: *const c_char, n: Ssize) -> Obj;
    fn PyUnicode_AsUTF8AndSize(o: Obj, n: *mut Ssize) -> *const c_char;
    fn PyUnicode_GetLength(o: Obj) -> Ssize;
    fn PyUnicode_ReadChar(o: Obj, i: Ssize) -> u32;
    fn PyUnicode_FromOrdinal(c: c_int) -> Obj;
    fn PyErr_Occurred() -> Obj;
    fn PyErr_Clear();
    fn PyErr_SetString(t: Obj, msg: *const c_char);
    fn PyObject_GetBuffer(o: Obj, view: *mut PyBuffer, flags: c_int) -> c_int;
    fn PyBuffer_Release(view: *mut PyBuffer);
    fn PyObject_CallMethod(o: Obj, name: *const c_char, fmt: *const c_char, ...) -> Obj;
    fn Py_IncRef(o: Obj);
    fn Py_DecRef(o: Obj);
    fn PyTuple_New(n: Ssize) -> Obj;
    fn PyTuple_SetItem(t: Obj, i: Ssize, v: Obj) -> c_int;
    fn PyList_New(n: Ssize) -> Obj;
    fn PyList_SetItem(l: Obj, i: Ssize, v: Obj) -> c_int;
    fn PyEval_SaveThread() -> *mut c_void;
    fn PyEval_RestoreThread(state: *mut c_void);
    fn PyErr_CheckSignals() -> c_int;
    fn PyErr_SetNone(t: Obj);
    static mut PyExc_KeyboardInterrupt: Obj;
    static mut PyLong_Type: Opaque;
    static mut PyFloat_Type: Opaque;
    static mut PyUnicode_Type: Opaque;
    static mut _Py_NoneStruct: PyObject;
    static mut _Py_TrueStruct: PyObject;
    static mut _Py_FalseStruct: PyObject;
    static mut PyExc_RuntimeError: Obj;
}

// ---------------------------------------------------------------- slots, deadlines, guards

static ZERO: AtomicU32 = AtomicU32::new(0);
static API: AtomicPtr<Api> = AtomicPtr::new(null_mut());
// The trampoline's count of flagged calls; a local zero until init points it there.
static PENDING: AtomicPtr<AtomicU32> = AtomicPtr::new(&ZERO as *const AtomicU32 as *mut AtomicU32);

thread_local! {
    // This thread's record, once the thread made a guarded call or met a depth guard. A raw
    // pointer with a const initialiser: no TLS destructor, so the library can be unloaded.
    static RECORD: Cell<*mut Record> = const { Cell::new(null_mut()) };
}

/// Unwinds out of candidate code when its call passed the deadline.
pub struct Interrupted;
/// Unwinds out of candidate code before recursion exhausts the stack.
pub struct TooDeep;

#[inline(always)]
fn record() -> *mut Record {
    RECORD.with(|r| {
        let mut p = r.get();
        if p.is_null() {
            let api = API.load(Ordering::Relaxed);
            if !api.is_null() {
                p = unsafe { ((*api).record)() };
                r.set(p);
            }
        }
        p
    })
}

/// Loop back-edges and closure bodies: one relaxed load of a process-wide counter; the thread's
/// own record is only consulted when some call, somewhere, is past its deadline.
/// `#[track_caller]`: the stop is reported at the candidate's loop, not here.
#[inline(always)]
#[track_caller]
pub fn tick() {
    if unsafe { (*PENDING.load(Ordering::Relaxed)).load(Ordering::Relaxed) } != 0 {
        let why = flagged();
        if why != 0 {
            interrupted(why);
        }
    }
}

// Neither guard panics while its thread already unwinds: a candidate's `Drop` whose loop or
// recursion runs during the unwinding of a stopped call would otherwise panic a second time,
// which aborts the process.
#[cold]
#[inline(never)]
#[track_caller]
fn interrupted(why: u8) {
    if !std::thread::panicking() {
        if why == STOP_CTRL_C {
            std::panic::panic_any(CtrlC)
        }
        std::panic::panic_any(Interrupted)
    }
}

/// Unwinds out of candidate code when Ctrl-C stops the main thread's call.
pub struct CtrlC;

const STOP_DEADLINE: u8 = 1;
const STOP_CTRL_C: u8 = 2;

/// Why this thread's call must stop: its armed call was flagged by the watchdog
/// (`STOP_DEADLINE`), or Ctrl-C is for it (`STOP_CTRL_C`); 0 to go on. Never unwinds.
extern "C" fn probe() -> u8 {
    let r = RECORD.with(|r| r.get());
    if !r.is_null() {
        // Only an armed call (odd seq) can be stopped, and only by a flag raised for that call.
        let seq = unsafe { (*r).seq.load(Ordering::SeqCst) };
        if seq % 2 == 1 && unsafe { (*r).flag.load(Ordering::SeqCst) } == flag_for(seq) {
            return STOP_DEADLINE;
        }
    }
    let api = API.load(Ordering::Relaxed);
    if !api.is_null()
        && unsafe { (*(*api).interrupt).load(Ordering::Relaxed) } != 0
        && unsafe { ((*api).interrupt_claim)() }
    {
        return STOP_CTRL_C;
    }
    0
}

// An ordinary call inside a hot loop, even on a never-taken branch, makes the compiler keep the
// loop's floating-point values in stack slots (no xmm register survives a call in the x86-64
// System V ABI): float loops ran ~1.5x slower with guards. The probe is therefore reached
// through a trampoline that saves every caller-saved register itself, and the call site tells
// the compiler that only rax and the flags change. Without AVX enabled no code of this library
// touches the upper halves of the vector registers, so saving xmm0-15 is enough; with AVX the
// plain call is used.
#[cfg(all(target_arch = "x86_64", target_os = "linux", not(target_feature = "avx")))]
std::arch::global_asm!(
    ".pushsection .text.__symbiont_probe_saving,\"ax\",@progbits",
    ".globl __symbiont_probe_saving",
    ".hidden __symbiont_probe_saving",
    ".type __symbiont_probe_saving,@function",
    ".p2align 4",
    "__symbiont_probe_saving:",
    "push rbp",
    "mov rbp, rsp",
    "and rsp, -16",
    "sub rsp, 320",
    "movdqa [rsp + 0], xmm0",
    "movdqa [rsp + 16], xmm1",
    "movdqa [rsp + 32], xmm2",
    "movdqa [rsp + 48], xmm3",
    "movdqa [rsp + 64], xmm4",
    "movdqa [rsp + 80], xmm5",
    "movdqa [rsp + 96], xmm6",
    "movdqa [rsp + 112], xmm7",
    "movdqa [rsp + 128], xmm8",
    "movdqa [rsp + 144], xmm9",
    "movdqa [rsp + 160], xmm10",
    "movdqa [rsp + 176], xmm11",
    "movdqa [rsp + 192], xmm12",
    "movdqa [rsp + 208], xmm13",
    "movdqa [rsp + 224], xmm14",
    "movdqa [rsp + 240], xmm15",
    "mov [rsp + 256], rcx",
    "mov [rsp + 264], rdx",
    "mov [rsp + 272], rsi",
    "mov [rsp + 280], rdi",
    "mov [rsp + 288], r8",
    "mov [rsp + 296], r9",
    "mov [rsp + 304], r10",
    "mov [rsp + 312], r11",
    "call {probe}",
    "movdqa xmm0, [rsp + 0]",
    "movdqa xmm1, [rsp + 16]",
    "movdqa xmm2, [rsp + 32]",
    "movdqa xmm3, [rsp + 48]",
    "movdqa xmm4, [rsp + 64]",
    "movdqa xmm5, [rsp + 80]",
    "movdqa xmm6, [rsp + 96]",
    "movdqa xmm7, [rsp + 112]",
    "movdqa xmm8, [rsp + 128]",
    "movdqa xmm9, [rsp + 144]",
    "movdqa xmm10, [rsp + 160]",
    "movdqa xmm11, [rsp + 176]",
    "movdqa xmm12, [rsp + 192]",
    "movdqa xmm13, [rsp + 208]",
    "movdqa xmm14, [rsp + 224]",
    "movdqa xmm15, [rsp + 240]",
    "mov rcx, [rsp + 256]",
    "mov rdx, [rsp + 264]",
    "mov rsi, [rsp + 272]",
    "mov rdi, [rsp + 280]",
    "mov r8, [rsp + 288]",
    "mov r9, [rsp + 296]",
    "mov r10, [rsp + 304]",
    "mov r11, [rsp + 312]",
    "mov rsp, rbp",
    "pop rbp",
    "ret",
    ".size __symbiont_probe_saving, . - __symbiont_probe_saving",
    ".popsection",
    probe = sym probe,
);

#[cfg(all(target_arch = "x86_64", target_os = "linux", not(target_feature = "avx")))]
extern "C" {
    fn __symbiont_probe_saving();
}

#[cfg(all(target_arch = "x86_64", target_os = "linux", not(target_feature = "avx")))]
#[inline(always)]
fn flagged() -> u8 {
    let r: u64;
    // Only rax (the result) and the flags change: the trampoline restores everything else.
    unsafe { std::arch::asm!("call {f}", f = sym __symbiont_probe_saving, out("rax") r) };
    (r & 0xff) as u8
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux", not(target_feature = "avx"))))]
#[inline(always)]
fn flagged() -> u8 {
    probe()
}

/// Entries of functions that may recurse: the tick, plus a stack-depth check.
#[inline(always)]
#[track_caller]
pub fn enter() {
    tick();
    let marker = 0u8;
    let sp = std::ptr::addr_of!(marker) as usize;
    let r = record();
    if !r.is_null() && sp < unsafe { (*r).stack_low.load(Ordering::Relaxed) } {
        too_deep();
    }
}

#[cold]
#[inline(never)]
#[track_caller]
fn too_deep() {
    if !std::thread::panicking() {
        std::panic::panic_any(TooDeep)
    }
}

/// Arms the watchdog for this thread's call; `disarm` reports whether the deadline passed.
pub struct Armed(*mut Record);

#[inline(always)]
pub unsafe fn arm(timeout_ns: u64) -> Option<Armed> {
    if timeout_ns == 0 {
        return None;
    }
    arm_slow(timeout_ns)
}

#[inline(never)]
fn arm_slow(timeout_ns: u64) -> Option<Armed> {
    let r = record();
    let api = API.load(Ordering::Relaxed);
    if r.is_null() || api.is_null() {
        return None;
    }
    unsafe {
        // A flag the watchdog raised as the previous call ended must not stop this one.
        if (*r).flag.swap(0, Ordering::SeqCst) != 0 {
            (*PENDING.load(Ordering::Relaxed)).fetch_sub(1, Ordering::SeqCst);
        }
        (*r).timeout_ns.store(timeout_ns, Ordering::SeqCst);
        (*r).seq.fetch_add(1, Ordering::SeqCst);
        // SeqCst with the watchdog's own accesses: it must not park while this call is armed.
        if (*(*api).parked).load(Ordering::SeqCst) {
            ((*api).wake)();
        }
    }
    Some(Armed(r))
}

impl Armed {
    /// Ends the armed call; true when the watchdog flagged it.
    unsafe fn disarm(self) -> bool {
        let seq = (*self.0).seq.fetch_add(1, Ordering::SeqCst);
        let flag = (*self.0).flag.swap(0, Ordering::SeqCst);
        if flag != 0 {
            (*PENDING.load(Ordering::Relaxed)).fetch_sub(1, Ordering::SeqCst);
        }
        flag == flag_for(seq)
    }
}

pub unsafe fn init(api: *mut Api) {
    if !api.is_null() && (*api).version == API_VERSION {
        API.store(api, Ordering::Relaxed);
        PENDING.store((*api).pending as *mut AtomicU32, Ordering::Relaxed);
        LENT.store((*api).lent as *mut AtomicUsize, Ordering::Relaxed);
    }
    install_hook();
}

// ---------------------------------------------------------------- panics

thread_local! {
    // (file ptr, file len, line, column) of the last panic on this thread. Plain `Copy` data
    // and a const initialiser: a TLS value with a destructor would pin the library in memory
    // (glibc refuses to unmap a library with live TLS destructors).
    static LOCATION: Cell<(usize, usize, u32, u32)> = const { Cell::new((0, 0, 0, 0)) };
}

/// Installs the silent panic hook. The default hook prints to stderr and, with
/// RUST_BACKTRACE=1, symbolises the whole stack (about 70 ms per panic).
fn install_hook() {
    std::panic::set_hook(Box::new(|info| {
        if let Some(loc) = info.location() {
            let file = loc.file();
            LOCATION.with(|c| c.set((file.as_ptr() as usize, file.len(), loc.line(), loc.column())));
        }
    }));
}

#[inline(never)]
unsafe fn panicked(pin: &mut Pin, fi: Ssize, payload: Box<dyn std::any::Any + Send>) -> Obj {
    let k = pin.hold();
    raise_panic(k, fi, &caught(payload))
}

/// Drops a panic payload where its own `Drop` may panic (`panic_any(Bomb)`, which the policy
/// cannot tell from an ordinary panic): that second panic is caught here too instead of
/// unwinding into the C caller and aborting the process. A payload that keeps panicking is
/// leaked after a few rounds.
fn release(payload: Box<dyn std::any::Any + Send>) {
    let mut p = payload;
    for _ in 0..8 {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(p))) {
            Ok(()) => return,
            Err(next) => p = next,
        }
    }
    std::mem::forget(p);
}

const TOO_DEEP: &str = "recursion too deep: the thread's stack is nearly exhausted (symbiont's \
                        depth guard stopped the call before it could overflow)";

/// A caught panic, owned: its message and where it happened (the hook's record of it).
pub struct Caught {
    msg: String,
    file: String,
    line: u32,
    col: u32,
}

/// Reads the message out of a panic payload and takes this thread's recorded location.
fn caught(payload: Box<dyn std::any::Any + Send>) -> Caught {
    // The location first: the hook records the last panic, and dropping the payload may panic.
    let (fp, fl, line, col) = LOCATION.with(|c| c.replace((0, 0, 0, 0)));
    let msg = if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else if payload.is::<TooDeep>() {
        TOO_DEEP.to_string()
    } else {
        "Box<dyn Any>".to_string()
    };
    release(payload);
    let file = if fp == 0 {
        String::new()
    } else {
        unsafe { String::from_utf8_lossy(std::slice::from_raw_parts(fp as *const u8, fl)).into() }
    };
    Caught { msg, file, line, col }
}

/// Raises the keeper's PanicError for a caught panic (the GIL is held).
unsafe fn raise_panic(k: Obj, fi: Ssize, c: &Caught) -> Obj {
    unexpected(PyObject_CallMethod(
        k,
        c"_panic".as_ptr(),
        c"nNNII".as_ptr(),
        fi,
        PyUnicode_FromStringAndSize(c.msg.as_ptr() as *const c_char, c.msg.len() as Ssize),
        PyUnicode_FromStringAndSize(c.file.as_ptr() as *const c_char, c.file.len() as Ssize),
        c.line,
        c.col,
    ))
}

/// A keeper callback that should have raised returned a value instead.
unsafe fn unexpected(r: Obj) -> Obj {
    if !r.is_null() {
        Py_DecRef(r);
        PyErr_SetString(PyExc_RuntimeError, c"symbiont: error callback did not raise".as_ptr());
    }
    null_mut()
}

#[inline(never)]
pub unsafe fn arity(pin: &mut Pin, fi: Ssize, nargs: Ssize) -> Obj {
    let k = pin.hold();
    unexpected(PyObject_CallMethod(k, c"_arity".as_ptr(), c"nn".as_ptr(), fi, nargs))
}

unsafe fn arg_error(pin: &mut Pin, fi: Ssize, pi: Ssize, o: Obj) {
    let k = pin.hold();
    unexpected(PyObject_CallMethod(k, c"_coerce".as_ptr(), c"nnOi".as_ptr(), fi, pi, o, 0 as c_int));
}

// ---------------------------------------------------------------- scalar arguments

pub trait FromPy: Sized {
    /// Converts an object of the exact expected type without running any Python code; returns
    /// None (with no Python error pending) for anything else.
    unsafe fn fast(o: Obj) -> Option<Self>;
    /// Converts any acceptable object; may run Python code (`__index__`, `__float__`).
    unsafe fn from_py(o: Obj) -> Option<Self> {
        Self::fast(o)
    }
}

macro_rules! signed {
    ($($t:ty),*) => {$(
        impl FromPy for $t {
            #[inline(always)]
            unsafe fn fast(o: Obj) -> Option<$t> {
                if !is_exact(o, addr_of_mut!(PyLong_Type)) {
                    return None;
                }
                // Never sets an error for an exact int (an OverflowError would allocate).
                let mut overflow: c_int = 0;
                let v = PyLong_AsLongLongAndOverflow(o, &mut overflow);
                if overflow != 0 {
                    return None;
                }
                <$t>::try_from(v).ok()
            }
            #[inline(always)]
            unsafe fn from_py(o: Obj) -> Option<$t> {
                let mut overflow: c_int = 0;
                let v = PyLong_AsLongLongAndOverflow(o, &mut overflow);
                if overflow != 0 {
                    return None;
                }
                if v == -1 && !PyErr_Occurred().is_null() {
                    PyErr_Clear();
                    return None;
                }
                <$t>::try_from(v).ok()
            }
        }
    )*};
}
macro_rules! unsigned {
    ($($t:ty),*) => {$(
        impl FromPy for $t {
            #[inline(always)]
            unsafe fn fast(o: Obj) -> Option<$t> {
                if !is_exact(o, addr_of_mut!(PyLong_Type)) {
                    return None;
                }
                // Never sets an error; negative values and those past i64::MAX take the pinned
                // slow path (PyLong_AsUnsignedLongLong raises for them).
                let mut overflow: c_int = 0;
                let v = PyLong_AsLongLongAndOverflow(o, &mut overflow);
                if overflow != 0 || v < 0 {
                    return None;
                }
                <$t>::try_from(v as u64).ok()
            }
            unsafe fn from_py(o: Obj) -> Option<$t> {
                let v = PyLong_AsUnsignedLongLong(o);
                if v == u64::MAX && !PyErr_Occurred().is_null() {
                    PyErr_Clear();
                    return None;
                }
                <$t>::try_from(v).ok()
            }
        }
    )*};
}
signed!(i8, i16, i32, i64, isize);
unsigned!(u8, u16, u32, u64, usize);

impl FromPy for f64 {
    #[inline(always)]
    unsafe fn fast(o: Obj) -> Option<f64> {
        if !is_exact(o, addr_of_mut!(PyFloat_Type)) {
            return None;
        }
        Self::from_py(o)
    }
    #[inline(always)]
    unsafe fn from_py(o: Obj) -> Option<f64> {
        let v = PyFloat_AsDouble(o);
        if v == -1.0 && !PyErr_Occurred().is_null() {
            PyErr_Clear();
            return None;
        }
        Some(v)
    }
}

#[inline(always)]
fn narrow(v: f64) -> Option<f32> {
    let n = v as f32;
    // A finite value beyond f32's range would silently become infinity.
    if v.is_finite() && n.is_infinite() { None } else { Some(n) }
}

impl FromPy for f32 {
    #[inline(always)]
    unsafe fn fast(o: Obj) -> Option<f32> {
        narrow(f64::fast(o)?)
    }
    unsafe fn from_py(o: Obj) -> Option<f32> {
        narrow(f64::from_py(o)?)
    }
}

impl FromPy for bool {
    #[inline(always)]
    unsafe fn fast(o: Obj) -> Option<bool> {
        if o == addr_of_mut!(_Py_TrueStruct) {
            Some(true)
        } else if o == addr_of_mut!(_Py_FalseStruct) {
            Some(false)
        } else {
            None
        }
    }
}

impl FromPy for char {
    #[inline(always)]
    unsafe fn fast(o: Obj) -> Option<char> {
        if !is_exact(o, addr_of_mut!(PyUnicode_Type)) {
            return None;
        }
        Self::from_py(o)
    }
    unsafe fn from_py(o: Obj) -> Option<char> {
        let n = PyUnicode_GetLength(o);
        if n != 1 {
            if n < 0 {
                PyErr_Clear();
            }
            return None;
        }
        char::from_u32(PyUnicode_ReadChar(o, 0))
    }
}

/// A scalar argument; on failure asks the keeper to normalise the object (numpy scalars,
/// objects with `__index__`) and tries once more, or lets the keeper raise the error.
#[inline(always)]
pub unsafe fn arg<T: FromPy>(pin: &mut Pin, fi: Ssize, pi: Ssize, o: Obj) -> Result<T, ()> {
    if let Some(v) = T::fast(o) {
        return Ok(v);
    }
    arg_slow(pin, fi, pi, o)
}

#[inline(never)]
unsafe fn arg_slow<T: FromPy>(pin: &mut Pin, fi: Ssize, pi: Ssize, o: Obj) -> Result<T, ()> {
    let k = pin.hold();
    let n = PyObject_CallMethod(k, c"_coerce".as_ptr(), c"nnOi".as_ptr(), fi, pi, o, 1 as c_int);
    if n.is_null() {
        return Err(());
    }
    let r = T::from_py(n);
    Py_DecRef(n);
    match r {
        Some(v) => Ok(v),
        None => {
            arg_error(pin, fi, pi, o);
            Err(())
        }
    }
}

/// `&str`: borrowed from the argument, which outlives the call. No normalisation.
/// Always pinned: even an exact `str` with a lone surrogate makes the encoder build a
/// UnicodeEncodeError, an allocation that may run the garbage collector and its finalizers.
#[inline(always)]
pub unsafe fn str_arg<'a>(pin: &mut Pin, fi: Ssize, pi: Ssize, o: Obj) -> Result<&'a str, ()> {
    pin.hold();
    let mut n: Ssize = 0;
    let p = PyUnicode_AsUTF8AndSize(o, &mut n);
    if p.is_null() {
        PyErr_Clear();
        arg_error(pin, fi, pi, o);
        return Err(());
    }
    Ok(std::str::from_utf8_unchecked(std::slice::from_raw_parts(p as *const u8, n as usize)))
}

// ---------------------------------------------------------------- buffers

pub trait Elem: Sized {
    fn format_ok(code: u8, itemsize: Ssize) -> bool;
    /// Whether every element's bytes are a valid value of the type (only `bool` can fail).
    unsafe fn valid(_p: *const Self, _n: usize) -> bool {
        true
    }
}

macro_rules! elem {
    ($t:ty, $codes:expr) => {
        impl Elem for $t {
            #[inline(always)]
            fn format_ok(code: u8, itemsize: Ssize) -> bool {
                itemsize as usize == std::mem::size_of::<$t>() && $codes.contains(&code)
            }
        }
    };
}
elem!(i8, b"bhilqn");
elem!(i16, b"bhilqn");
elem!(i32, b"bhilqn");
elem!(i64, b"bhilqn");
elem!(isize, b"bhilqn");
elem!(u8, b"BHILQN");
elem!(u16, b"BHILQN");
elem!(u32, b"BHILQN");
elem!(u64, b"BHILQN");
elem!(usize, b"BHILQN");
elem!(f32, b"f");
elem!(f64, b"d");
impl Elem for bool {
    #[inline(always)]
    fn format_ok(code: u8, itemsize: Ssize) -> bool {
        itemsize == 1 && code == b'?'
    }
    /// A byte other than 0 or 1 read as a Rust `bool` is undefined behaviour: refuse it.
    unsafe fn valid(p: *const bool, n: usize) -> bool {
        std::slice::from_raw_parts(p as *const u8, n).iter().all(|&b| b <= 1)
    }
}
// `&mut char` is passed through a Cell only: no buffer format means "Rust char".
elem!(char, b"");

/// A held buffer view, released on drop (also when the call panics).
pub struct View {
    view: PyBuffer,
    held: bool,
}

impl View {
    #[inline(always)]
    pub fn new() -> View {
        View { view: unsafe { std::mem::zeroed() }, held: false }
    }
    pub fn bytes(&self) -> (usize, usize) {
        if self.held { (self.view.buf as usize, self.view.len as usize) } else { (0, 0) }
    }
}

impl View {
    /// Releases the view now (in place: no copy of the struct), before the pin is dropped.
    #[inline(always)]
    pub fn release(&mut self) {
        if self.held {
            self.held = false;
            unsafe { PyBuffer_Release(&mut self.view) };
        }
    }
}

impl Drop for View {
    #[inline(always)]
    fn drop(&mut self) {
        self.release();
    }
}

#[inline(always)]
unsafe fn format_code(fmt: *const c_char) -> Option<u8> {
    if fmt.is_null() {
        return Some(b'B');
    }
    let mut p = fmt as *const u8;
    // '@' native, '=' and '<' standard little-endian: all mean native on the targets we build.
    if matches!(*p, b'@' | b'=' | b'<') {
        p = p.add(1);
    }
    let c = *p;
    if c == 0 || *p.add(1) != 0 { None } else { Some(c) }
}

/// Acquires a C-contiguous buffer of `T`; returns its start and element count.
#[inline(always)]
unsafe fn acquire<T: Elem>(
    pin: &mut Pin, fi: Ssize, pi: Ssize, o: Obj, v: &mut View, writable: bool,
) -> Result<(*mut T, usize), ()> {
    pin.hold(); // exporters may run Python code
    let flags = PYBUF_FORMAT | PYBUF_C_CONTIGUOUS | if writable { PYBUF_WRITABLE } else { 0 };
    if PyObject_GetBuffer(o, &mut v.view, flags) != 0 {
        PyErr_Clear();
        arg_error(pin, fi, pi, o);
        return Err(());
    }
    v.held = true;
    let ok = match format_code(v.view.format) {
        Some(c) => T::format_ok(c, v.view.itemsize),
        None => false,
    };
    let p = v.view.buf as *mut T;
    if !ok || (p as usize) % std::mem::align_of::<T>() != 0 {
        arg_error(pin, fi, pi, o);
        return Err(());
    }
    let n = v.view.len as usize / std::mem::size_of::<T>();
    if !T::valid(p, n) {
        arg_error(pin, fi, pi, o);
        return Err(());
    }
    let p = if n == 0 { std::ptr::NonNull::<T>::dangling().as_ptr() } else { p };
    Ok((p, n))
}

#[inline(always)]
pub unsafe fn slice<'a, T: Elem>(
    pin: &mut Pin, fi: Ssize, pi: Ssize, o: Obj, v: &mut View,
) -> Result<&'a [T], ()> {
    let (p, n) = acquire::<T>(pin, fi, pi, o, v, false)?;
    Ok(std::slice::from_raw_parts(p, n))
}

#[inline(always)]
pub unsafe fn slice_mut<'a, T: Elem>(
    pin: &mut Pin, fi: Ssize, pi: Ssize, o: Obj, v: &mut View,
) -> Result<&'a mut [T], ()> {
    let (p, n) = acquire::<T>(pin, fi, pi, o, v, true)?;
    Ok(std::slice::from_raw_parts_mut(p, n))
}

/// `&mut T`: a writable one-element buffer (written in place) or a `symbiont.Cell`, whose value
/// is read here into `tmp` and written back by `cell_back` after a successful call.
#[inline(always)]
pub unsafe fn mut_ref<'a, T: Elem + FromPy>(
    pin: &mut Pin, fi: Ssize, pi: Ssize, o: Obj, v: &mut View, tmp: &'a mut T,
) -> Result<&'a mut T, ()> {
    let k = pin.hold();
    let flags = PYBUF_FORMAT | PYBUF_C_CONTIGUOUS | PYBUF_WRITABLE;
    if PyObject_GetBuffer(o, &mut v.view, flags) == 0 {
        v.held = true;
        let ok = match format_code(v.view.format) {
            Some(c) => T::format_ok(c, v.view.itemsize),
            None => false,
        };
        let p = v.view.buf as *mut T;
        if !ok
            || v.view.len as usize != std::mem::size_of::<T>()
            || (p as usize) % std::mem::align_of::<T>() != 0
            || !T::valid(p, 1)
        {
            arg_error(pin, fi, pi, o);
            return Err(());
        }
        return Ok(&mut *p);
    }
    PyErr_Clear();
    let val = PyObject_CallMethod(k, c"_cell_get".as_ptr(), c"nnO".as_ptr(), fi, pi, o);
    if val.is_null() {
        return Err(());
    }
    let r = T::from_py(val);
    Py_DecRef(val);
    match r {
        Some(x) => {
            *tmp = x;
            Ok(tmp)
        }
        None => {
            arg_error(pin, fi, pi, o);
            Err(())
        }
    }
}

/// Writes a Cell's new value back (no-op when the argument was a buffer).
#[inline(always)]
pub unsafe fn cell_back<T: Ret>(pin: &mut Pin, fi: Ssize, pi: Ssize, o: Obj, v: &View, value: T) -> bool {
    if v.held {
        return true;
    }
    let k = pin.hold();
    let py = value.into_py();
    if py.is_null() {
        return false;
    }
    let r = PyObject_CallMethod(k, c"_cell_set".as_ptr(), c"nnOO".as_ptr(), fi, pi, o, py);
    Py_DecRef(py);
    if r.is_null() {
        return false;
    }
    Py_DecRef(r);
    true
}

/// Re-checks a `bool` buffer once every argument is acquired: a later argument's `__index__`
/// or buffer exporter may have written other bytes into it after `acquire` checked it.
#[inline(always)]
pub unsafe fn still_valid<T: Elem>(pin: &mut Pin, fi: Ssize, pi: Ssize, o: Obj, v: &View) -> bool {
    if !v.held || T::valid(v.view.buf as *const T, v.view.len as usize / std::mem::size_of::<T>()) {
        return true;
    }
    arg_error(pin, fi, pi, o);
    false
}

/// A buffer argument's memory: (parameter index, (start, byte length), mutable).
pub type Span = (Ssize, (usize, usize), bool);

static LENT_NONE: AtomicUsize = AtomicUsize::new(0);
// The trampoline's count of lent ranges; a local zero until init points it there.
static LENT: AtomicPtr<AtomicUsize> = AtomicPtr::new(&LENT_NONE as *const AtomicUsize as *mut AtomicUsize);

/// Refuses buffer arguments that alias each other with a `&mut` among them, or that alias
/// memory a call in another thread holds with the GIL released (`rt.map`): two `&mut` to one
/// array, or a `&` to memory being written, are undefined behaviour in Rust. The registry is
/// only consulted while some range is lent, so calls on the common path pay one load.
#[inline(always)]
pub unsafe fn borrows(pin: &mut Pin, fi: Ssize, spans: &[Span]) -> bool {
    if spans.len() > 1 && overlap(pin, fi, spans) {
        return true;
    }
    (*LENT.load(Ordering::Relaxed)).load(Ordering::Relaxed) != 0 && lent_conflict(pin, fi, spans)
}

#[inline(never)]
unsafe fn lent_conflict(pin: &mut Pin, fi: Ssize, spans: &[Span]) -> bool {
    let api = API.load(Ordering::Relaxed);
    if api.is_null() {
        return false;
    }
    for &(pi, (a, n), m) in spans {
        if n > 0 && ((*api).conflicts)(a, n, m) {
            let k = pin.hold();
            unexpected(PyObject_CallMethod(k, c"_busy".as_ptr(), c"nn".as_ptr(), fi, pi));
            return true;
        }
    }
    false
}

/// Two arguments whose memory overlaps while one of them is `&mut` would alias a mutable
/// reference: undefined behaviour in Rust, so it is refused.
#[inline(never)]
unsafe fn overlap(pin: &mut Pin, fi: Ssize, spans: &[Span]) -> bool {
    let k = pin.hold(); // buffers are held, so this only reads the pinned keeper
    for (i, &(pi, (a, an), am)) in spans.iter().enumerate() {
        for &(pj, (b, bn), bm) in &spans[i + 1..] {
            if (am || bm) && an > 0 && bn > 0 && a < b + bn && b < a + an {
                unexpected(PyObject_CallMethod(k, c"_alias".as_ptr(), c"nnn".as_ptr(), fi, pi, pj));
                return true;
            }
        }
    }
    false
}

// ---------------------------------------------------------------- returns

pub trait Ret {
    /// Building the result allocates a GC-tracked container, which may run a collection and
    /// with it arbitrary finalizers: the entry must be pinned first.
    const CONTAINER: bool = false;
    /// A new reference, or null with a Python error set.
    unsafe fn into_py(self) -> Obj;
    /// The same, for containers and shared types whose conversion needs the (pinned) keeper
    /// `k`: numpy arrays, records, enum members (see rt_types.rs).
    #[inline(always)]
    unsafe fn into_py_k(self, _k: Obj) -> Obj
    where
        Self: Sized,
    {
        self.into_py()
    }
}

macro_rules! ret_int {
    ($f:ident, $w:ty; $($t:ty),*) => {$(
        impl Ret for $t {
            #[inline(always)]
            unsafe fn into_py(self) -> Obj { $f(self as $w) }
        }
    )*};
}
// `long` is 64-bit on the LP64 targets symbiont builds for; PyLong_FromLong is the shortest
// path into CPython's small-int cache, so unsigned values that fit take it too.
ret_int!(PyLong_FromLong, i64; i8, i16, i32, i64, isize, u8, u16, u32);

macro_rules! ret_u64 {
    ($($t:ty),*) => {$(
        impl Ret for $t {
            #[inline(always)]
            unsafe fn into_py(self) -> Obj {
                let v = self as u64;
                if v <= i64::MAX as u64 { PyLong_FromLong(v as i64) } else { PyLong_FromUnsignedLongLong(v) }
            }
        }
    )*};
}
ret_u64!(u64, usize);

impl Ret for f64 {
    #[inline(always)]
    unsafe fn into_py(self) -> Obj { PyFloat_FromDouble(self) }
}
impl Ret for f32 {
    #[inline(always)]
    unsafe fn into_py(self) -> Obj { PyFloat_FromDouble(self as f64) }
}
impl Ret for bool {
    #[inline(always)]
    unsafe fn into_py(self) -> Obj { PyBool_FromLong(self as c_long) }
}
impl Ret for char {
    #[inline(always)]
    unsafe fn into_py(self) -> Obj { PyUnicode_FromOrdinal(self as u32 as c_int) }
}
impl Ret for () {
    #[inline(always)]
    unsafe fn into_py(self) -> Obj {
        let none = addr_of_mut!(_Py_NoneStruct);
        Py_IncRef(none);
        none
    }
}
impl Ret for String {
    unsafe fn into_py(self) -> Obj {
        PyUnicode_FromStringAndSize(self.as_ptr() as *const c_char, self.len() as Ssize)
    }
}
impl<T: Ret> Ret for Option<T> {
    const CONTAINER: bool = T::CONTAINER;
    unsafe fn into_py(self) -> Obj {
        match self {
            Some(v) => v.into_py(),
            None => ().into_py(),
        }
    }
    unsafe fn into_py_k(self, k: Obj) -> Obj {
        match self {
            Some(v) => v.into_py_k(k),
            None => ().into_py(),
        }
    }
}
// Vec<T>: rt_types.rs (numpy arrays).

unsafe fn tuple(items: &[Obj]) -> Obj {
    if items.iter().any(|o| o.is_null()) {
        for &o in items {
            if !o.is_null() {
                Py_DecRef(o);
            }
        }
        return null_mut();
    }
    let t = PyTuple_New(items.len() as Ssize);
    if t.is_null() {
        for &o in items {
            Py_DecRef(o);
        }
        return t;
    }
    for (i, &o) in items.iter().enumerate() {
        PyTuple_SetItem(t, i as Ssize, o);
    }
    t
}

macro_rules! ret_tuple {
    ($($n:ident),+) => {
        impl<$($n: Ret),+> Ret for ($($n,)+) {
            const CONTAINER: bool = true;
            #[allow(non_snake_case)]
            unsafe fn into_py(self) -> Obj {
                let ($($n,)+) = self;
                tuple(&[$($n.into_py()),+])
            }
            #[allow(non_snake_case)]
            unsafe fn into_py_k(self, k: Obj) -> Obj {
                let ($($n,)+) = self;
                tuple(&[$($n.into_py_k(k)),+])
            }
        }
    };
}
ret_tuple!(A);
ret_tuple!(A, B);
ret_tuple!(A, B, C);
ret_tuple!(A, B, C, D);
ret_tuple!(A, B, C, D, E);
ret_tuple!(A, B, C, D, E, F);
ret_tuple!(A, B, C, D, E, F, G);
ret_tuple!(A, B, C, D, E, F, G, H);

/// Ends an armed call (before any Python code runs); true when the deadline passed.
#[inline(always)]
pub unsafe fn disarm(armed: Option<Armed>) -> bool {
    match armed {
        Some(a) => a.disarm(),
        None => false,
    }
}

/// Turns the call's outcome into the Python result: the value, a PanicError, or a TimeoutError
/// when the watchdog stopped it. The caller has released its buffer views already.
/// An unpinned call boxes a scalar result as a tail call (boxing one runs no Python code): this
/// is the hot path of every scalar function. A pinned one boxes it under the pin.
#[inline(always)]
pub unsafe fn finish<R: Ret>(
    mut pin: Pin, fi: Ssize, r: std::thread::Result<R>, flagged: bool, timeout_ns: u64,
) -> Obj {
    match r {
        Ok(v) => {
            if R::CONTAINER || pin.held {
                let o = v.into_py_k(pin.hold());
                drop(pin);
                o
            } else {
                drop(pin);
                v.into_py()
            }
        }
        Err(payload) => failed(&mut pin, fi, payload, flagged, timeout_ns),
    }
}

#[inline(never)]
unsafe fn failed(
    pin: &mut Pin, fi: Ssize, payload: Box<dyn std::any::Any + Send>, flagged: bool, ns: u64,
) -> Obj {
    if payload.is::<Interrupted>() && flagged {
        let k = pin.hold();
        release(payload);
        return unexpected(PyObject_CallMethod(k, c"_timeout".as_ptr(), c"nK".as_ptr(), fi, ns));
    }
    if payload.is::<CtrlC>() {
        release(payload);
        return ctrl_c(pin);
    }
    panicked(pin, fi, payload)
}

/// Ctrl-C stopped the call: Python's own handler is pending (ours chained to it), so running
/// the pending handlers raises KeyboardInterrupt (or whatever a handler installed since raises).
#[cold]
#[inline(never)]
unsafe fn ctrl_c(pin: &mut Pin) -> Obj {
    pin.hold(); // the handlers are Python code
    let api = API.load(Ordering::Relaxed);
    if !api.is_null() {
        ((*api).interrupt_done)();
    }
    if PyErr_CheckSignals() == 0 {
        PyErr_SetNone(PyExc_KeyboardInterrupt);
    }
    null_mut()
}

/// Marks the main thread's record `interruptible` while its call runs with the GIL released,
/// so a Ctrl-C raised meanwhile is kept for it (see `drop_stale_interrupt` in the trampoline).
struct MainCall(*mut Record);

impl MainCall {
    /// `worker`: a thread started for a call of the main thread (it is never the main one).
    unsafe fn enter(worker: bool) -> MainCall {
        let api = API.load(Ordering::Relaxed);
        if api.is_null() {
            return MainCall(null_mut());
        }
        let r = record();
        if r.is_null() || (!worker && r != (*(*api).main).load(Ordering::SeqCst)) {
            return MainCall(null_mut());
        }
        (*r).interruptible.store(1, Ordering::SeqCst);
        MainCall(r)
    }
    fn of_main(&self) -> bool {
        !self.0.is_null()
    }
}

impl Drop for MainCall {
    fn drop(&mut self) {
        if !self.0.is_null() {
            unsafe { (*self.0).interruptible.store(0, Ordering::SeqCst) };
        }
    }
}

/// Lends the call's buffers (GIL held) before it releases the GIL: another thread's call on
/// this memory is refused until `unlend_all`.
unsafe fn lend_all(spans: &[Span]) -> Vec<usize> {
    let api = API.load(Ordering::Relaxed);
    if api.is_null() {
        return Vec::new();
    }
    spans.iter().filter(|s| s.1 .1 > 0).map(|&(_, (a, n), m)| ((*api).lend)(a, n, m)).collect()
}

unsafe fn unlend_all(tickets: Vec<usize>) {
    let api = API.load(Ordering::Relaxed);
    if !api.is_null() {
        for t in tickets {
            ((*api).unlend)(t);
        }
    }
}

/// Runs a call of a dispatcher with `SLOT_RELEASE_GIL` with the GIL released: pinned first (the
/// revision stays mapped whatever other threads do), its buffers lent (checked by `borrows`
/// already, with the GIL held), and every Python-object step left to the caller, after the GIL
/// is back. `call` catches every panic itself.
#[inline(never)]
pub unsafe fn released<R>(pin: &mut Pin, spans: &[Span], call: impl FnOnce() -> R) -> R {
    pin.hold();
    let tickets = lend_all(spans);
    let main = MainCall::enter(false);
    let state = PyEval_SaveThread();
    let r = call();
    drop(main);
    PyEval_RestoreThread(state);
    unlend_all(tickets);
    r
}

// ---------------------------------------------------------------- vectorised calls

/// An input of a vectorised call: element `j` is at `j * step` (step 0 broadcasts one value).
pub struct Lane<T> {
    ptr: *const T,
    step: usize,
}

unsafe impl<T> Sync for Lane<T> {}

impl<T: Copy> Lane<T> {
    #[inline(always)]
    pub unsafe fn at(&self, j: usize) -> T {
        *self.ptr.add(j * self.step)
    }
}

/// A vectorised input: a buffer of `T` and its step (0 or 1), checked against `n` elements.
pub unsafe fn lane<'a, T: Elem + Copy>(
    pin: &mut Pin, fi: Ssize, pi: Ssize, o: Obj, step: Obj, n: usize, v: &'a mut View,
) -> Result<Lane<T>, ()> {
    let xs = slice::<T>(pin, fi, pi, o, v)?;
    let step: usize = arg(pin, fi, pi, step)?;
    let needed = if step == 0 { usize::from(n > 0) } else { n };
    if step > 1 || xs.len() < needed {
        arg_error(pin, fi, pi, o);
        return Err(());
    }
    Ok(Lane { ptr: xs.as_ptr(), step })
}

enum Stop {
    Panic(Caught),
    Timeout,
    CtrlC,
}

fn run_chunk<R, F: Fn(usize) -> R>(
    out: &mut [R], start: usize, f: &F, timeout_ns: u64, main_worker: bool,
) -> Option<Stop> {
    let _main = if main_worker { unsafe { MainCall::enter(true) } } else { MainCall(null_mut()) };
    let armed = unsafe { arm(timeout_ns) };
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        for (j, o) in out.iter_mut().enumerate() {
            *o = f(start + j);
        }
    }));
    let stopped = unsafe { disarm(armed) };
    match r {
        Ok(()) => None,
        Err(payload) if stopped && payload.is::<Interrupted>() => {
            release(payload);
            Some(Stop::Timeout)
        }
        Err(payload) if payload.is::<CtrlC>() => {
            release(payload);
            Some(Stop::CtrlC)
        }
        Err(payload) => Some(Stop::Panic(caught(payload))),
    }
}

// Worker threads get a main-thread-sized stack, so the depth guard behaves as in a plain call.
const WORKER_STACK: usize = 8 * 1024 * 1024;

/// One chunk of a vectorised call, run on one thread.
struct Job<'a> {
    work: Box<dyn FnMut() -> Option<Stop> + Send + 'a>,
    stop: Option<Stop>,
}

/// Runs the first job on the calling thread and the others on threads of their own.
///
/// On Linux the threads are plain pthreads: `std::thread` would make this library's copy of
/// std register a thread-local destructor in the *calling* (Python) thread, and glibc then
/// never unmaps the library, so every revision that ever ran a threaded map would stay loaded.
fn run_jobs(mut jobs: Vec<Job<'_>>) -> Vec<Option<Stop>> {
    let mut started: Vec<Option<usize>> = Vec::with_capacity(jobs.len());
    for job in jobs.iter_mut().skip(1) {
        started.push(spawn(job));
    }
    if let Some(first) = jobs.first_mut() {
        first.stop = (first.work)();
    }
    for (job, thread) in jobs.iter_mut().skip(1).zip(started) {
        match thread {
            Some(t) => join(t),
            None => job.stop = (job.work)(), // no thread to be had: run it here
        }
    }
    jobs.into_iter().map(|j| j.stop).collect()
}

#[cfg(target_os = "linux")]
extern "C" {
    fn pthread_attr_init(attr: *mut u64) -> c_int;
    fn pthread_attr_setstacksize(attr: *mut u64, size: usize) -> c_int;
    fn pthread_attr_destroy(attr: *mut u64) -> c_int;
    fn pthread_create(
        thread: *mut usize, attr: *const u64, start: extern "C" fn(*mut c_void) -> *mut c_void,
        arg: *mut c_void,
    ) -> c_int;
    fn pthread_join(thread: usize, ret: *mut *mut c_void) -> c_int;
}

#[cfg(target_os = "linux")]
extern "C" fn job_main(arg: *mut c_void) -> *mut c_void {
    // run_chunk catches every panic of the candidate: nothing unwinds out of this frame.
    let job = unsafe { &mut *(arg as *mut Job) };
    job.stop = (job.work)();
    null_mut()
}

#[cfg(target_os = "linux")]
fn spawn(job: &mut Job) -> Option<usize> {
    unsafe {
        let mut attr = [0u64; 16]; // pthread_attr_t is 56 bytes on x86_64/aarch64 glibc
        if pthread_attr_init(attr.as_mut_ptr()) != 0 {
            return None;
        }
        pthread_attr_setstacksize(attr.as_mut_ptr(), WORKER_STACK);
        let mut t: usize = 0;
        let ok = pthread_create(&mut t, attr.as_ptr(), job_main, job as *mut Job as *mut c_void) == 0;
        pthread_attr_destroy(attr.as_mut_ptr());
        ok.then_some(t)
    }
}

#[cfg(target_os = "linux")]
fn join(t: usize) {
    unsafe { pthread_join(t, null_mut()) };
}

// Elsewhere: std threads, joined before the call returns (libraries may then stay mapped).
#[cfg(not(target_os = "linux"))]
fn spawn(_job: &mut Job) -> Option<usize> {
    None
}

#[cfg(not(target_os = "linux"))]
fn join(_t: usize) {}

/// Runs `out[j] = f(j)` for every element with the GIL released, on `threads` threads (the
/// calling one included), each armed with the deadline; then reports the first panic or the
/// timeout with the GIL held again.
pub unsafe fn run_map<R: Send, F: Fn(usize) -> R + Sync>(
    pin: &mut Pin, fi: Ssize, out: &mut [R], spans: &[Span], threads: usize, timeout_ns: u64, f: F,
) -> Obj {
    let k = pin.hold(); // the GIL is released below: other threads may drop every other reference
    if borrows(pin, fi, spans) {
        return null_mut();
    }
    // Lent while the GIL is released: another thread's call on this memory is refused.
    let tickets = lend_all(spans);
    let n = out.len();
    let threads = threads.clamp(1, 256).min(n.max(1));
    let chunk = n.div_ceil(threads).max(1);
    // A call of the main thread: Ctrl-C stops it, its workers included.
    let main = MainCall::enter(false);
    let of_main = main.of_main();
    let state = PyEval_SaveThread();
    let stops: Vec<Option<Stop>> = if threads == 1 {
        vec![run_chunk(out, 0, &f, timeout_ns, false)]
    } else {
        let f = &f;
        let jobs: Vec<Job> = out
            .chunks_mut(chunk)
            .enumerate()
            .map(|(c, part)| Job {
                work: Box::new(move || run_chunk(part, c * chunk, f, timeout_ns, of_main && c > 0)),
                stop: None,
            })
            .collect();
        run_jobs(jobs)
    };
    drop(main);
    PyEval_RestoreThread(state);
    unlend_all(tickets);
    let mut timed_out = false;
    let mut ctrl_c_seen = false;
    let mut panic = None;
    for stop in stops.into_iter().flatten() {
        match stop {
            Stop::Timeout => timed_out = true,
            Stop::CtrlC => ctrl_c_seen = true,
            Stop::Panic(c) => panic = panic.or(Some(c)),
        }
    }
    // Ctrl-C first: the user asked to stop, whatever else the workers met on the way.
    if ctrl_c_seen {
        return ctrl_c(pin);
    }
    if let Some(c) = panic {
        return raise_panic(k, fi, &c);
    }
    if timed_out {
        return unexpected(PyObject_CallMethod(k, c"_timeout".as_ptr(), c"nK".as_ptr(), fi, timeout_ns));
    }
    ().into_py()
}

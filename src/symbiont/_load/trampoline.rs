// The dispatcher trampoline: a CPython extension module, built once per rustc/Python and
// imported once per process, that makes the stable callables behind `rt.fns.<name>`.
//
// Each callable is a real builtin (`PyCFunction_NewEx`, METH_FASTCALL | METH_KEYWORDS), so
// CPython 3.11+ specialises calls to it (CALL_BUILTIN_FAST_WITH_KEYWORDS); a custom callable
// type would cost ~1.3x more per call. A positional call goes straight to the entry; keyword
// arguments are put in declared order here first, by the parameter names the slot holds. Its `self` is a Slot holding the active revision's entry point, a strong reference to
// that revision's keeper object and the per-call deadline; the entry receives the slot itself.
// Retargeting rewrites the slot under the GIL. A call in flight that may run Python code or
// release the GIL pins the keeper it started with, and libraries are only unloaded by a reaper
// after their keeper died, so a revision's code is never unmapped under a running call.
//
// The module also owns what must outlive every revision library: the watchdog thread that
// stops calls past their deadline, the per-thread records it watches, and each thread's stack
// bounds for the depth guard, and the registry of memory lent to calls that released the GIL.
// Libraries reach them through `Api`, passed at their init. The types both sides share
// (`PyObject`, `SlotHead`, `Record`, `Api`) come from codegen/abi.rs, prepended to this file.
#![allow(non_upper_case_globals, non_camel_case_types, non_snake_case)]

use std::cell::Cell;
use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_long, c_uint, c_void, CString};
use std::ptr::{addr_of, addr_of_mut, null, null_mut};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[repr(C)]
struct PyModuleDefBase {
    ob_base: PyObject,
    m_init: Option<unsafe extern "C" fn() -> Obj>,
    m_index: Ssize,
    m_copy: Obj,
}

#[repr(C)]
struct PyMethodDef {
    ml_name: *const c_char,
    ml_meth: *const c_void,
    ml_flags: c_int,
    ml_doc: *const c_char,
}

#[repr(C)]
struct PyModuleDef {
    m_base: PyModuleDefBase,
    m_name: *const c_char,
    m_doc: *const c_char,
    m_size: Ssize,
    m_methods: *mut PyMethodDef,
    m_slots: *mut c_void,
    m_traverse: *mut c_void,
    m_clear: *mut c_void,
    m_free: *mut c_void,
}

#[repr(C)]
struct PyTypeSlot {
    slot: c_int,
    pfunc: *mut c_void,
}

#[repr(C)]
struct PyTypeSpec {
    name: *const c_char,
    basicsize: c_int,
    itemsize: c_int,
    flags: c_uint,
    slots: *mut PyTypeSlot,
}

type FastFn = unsafe extern "C" fn(Obj, *const Obj, Ssize) -> Obj;
type FastKwFn = unsafe extern "C" fn(Obj, *const Obj, Ssize, Obj) -> Obj;

const METH_O: c_int = 0x0008;
const METH_NOARGS: c_int = 0x0004;
const METH_FASTCALL: c_int = 0x0080;
const METH_KEYWORDS: c_int = 0x0002;
const Py_tp_dealloc: c_int = 52;
const Py_tp_doc: c_int = 56;
const Py_TPFLAGS_DEFAULT: c_uint = 1 << 18;

extern "C" {
    fn PyModule_Create2(def: *mut PyModuleDef, apiver: c_int) -> Obj;
    fn PyModule_AddObject(m: Obj, name: *const c_char, o: Obj) -> c_int;
    fn PyType_FromSpec(spec: *mut PyTypeSpec) -> Obj;
    fn PyType_GenericAlloc(t: Obj, n: Ssize) -> Obj;
    fn PyObject_Free(p: *mut c_void);
    fn PyCFunction_NewEx(def: *mut PyMethodDef, self_: Obj, module: Obj) -> Obj;
    fn PyCFunction_GetSelf(f: Obj) -> Obj;
    fn PyUnicode_AsUTF8AndSize(o: Obj, n: *mut Ssize) -> *const c_char;
    fn PyLong_AsVoidPtr(o: Obj) -> *mut c_void;
    fn PyLong_FromVoidPtr(p: *mut c_void) -> Obj;
    fn PyLong_AsUnsignedLongLong(o: Obj) -> u64;
    fn PyLong_FromUnsignedLongLong(v: u64) -> Obj;
    fn PyErr_SetString(t: Obj, msg: *const c_char);
    fn PyErr_Occurred() -> Obj;
    fn PyErr_Format(t: Obj, fmt: *const c_char, ...) -> Obj;
    fn PyTuple_Size(t: Obj) -> Ssize;
    fn PyTuple_GetItem(t: Obj, i: Ssize) -> Obj;
    fn PyUnicode_Compare(a: Obj, b: Obj) -> c_int;
    fn PyErr_Clear();
    fn PyObject_IsTrue(o: Obj) -> c_int;
    fn PyBool_FromLong(v: c_long) -> Obj;
    fn Py_IncRef(o: Obj);
    fn Py_DecRef(o: Obj);
    static mut _Py_NoneStruct: PyObject;
    static mut PyExc_TypeError: Obj;
    static mut PyExc_RuntimeError: Obj;
}

// The first four fields are read by the generated entry points as abi.rs `SlotHead`.
#[repr(C)]
struct Slot {
    ob_base: PyObject,
    entry: Option<FastFn>,
    keeper: Obj,
    timeout_ns: u64,
    flags: u64,
    def: PyMethodDef,
    name: *mut c_char,
    doc: *mut c_char,
    /// The declared parameter names (a tuple of str), for keyword arguments, and joined with
    /// ", " for messages.
    params: Obj,
    params_text: *mut c_char,
}

const _: () = {
    use std::mem::{offset_of, size_of};
    assert!(offset_of!(Slot, entry) == offset_of!(SlotHead, entry));
    assert!(offset_of!(Slot, keeper) == offset_of!(SlotHead, keeper));
    assert!(offset_of!(Slot, timeout_ns) == offset_of!(SlotHead, timeout_ns));
    assert!(offset_of!(Slot, flags) == offset_of!(SlotHead, flags));
    assert!(size_of::<Option<FastFn>>() == size_of::<*mut c_void>());
};

static mut SLOT_TYPE: Obj = null_mut();

unsafe extern "C" fn slot_dealloc(o: Obj) {
    let s = o as *mut Slot;
    if !(*s).keeper.is_null() {
        Py_DecRef((*s).keeper);
    }
    if !(*s).name.is_null() {
        drop(CString::from_raw((*s).name));
    }
    if !(*s).doc.is_null() {
        drop(CString::from_raw((*s).doc));
    }
    if !(*s).params.is_null() {
        Py_DecRef((*s).params);
    }
    if !(*s).params_text.is_null() {
        drop(CString::from_raw((*s).params_text));
    }
    let tp = (*o).ob_type as Obj;
    PyObject_Free(o as *mut c_void);
    // Instances of heap types own a reference to their type.
    Py_DecRef(tp);
}

unsafe extern "C" fn dispatch(slot: Obj, args: *const Obj, nargs: Ssize, kwnames: Obj) -> Obj {
    // A Ctrl-C that is still raised when a call starts arrived while no native call of the main
    // thread ran (Python raises KeyboardInterrupt for it itself): it must not stop this call.
    // Both paths end in a tail call, so the common one needs no stack frame.
    if INTERRUPT.load(Ordering::Relaxed) != 0 {
        return dispatch_after_interrupt(slot, args, nargs, kwnames);
    }
    dispatch_now(slot, args, nargs, kwnames)
}

#[cold]
#[inline(never)]
unsafe fn dispatch_after_interrupt(slot: Obj, args: *const Obj, nargs: Ssize, kwnames: Obj) -> Obj {
    drop_stale_interrupt();
    dispatch_now(slot, args, nargs, kwnames)
}

#[inline(always)]
unsafe fn dispatch_now(slot: Obj, args: *const Obj, nargs: Ssize, kwnames: Obj) -> Obj {
    let s = slot as *mut Slot;
    match (*s).entry {
        // No reference count round trip here: the entry pins its keeper itself before anything
        // that may run Python code (see the invariant at the top of codegen/rt.rs).
        Some(f) if kwnames.is_null() => f(slot, args, nargs),
        Some(f) => with_keywords(s, f, args, nargs, kwnames),
        None => {
            PyErr_SetString(PyExc_RuntimeError, c"symbiont: no revision is active".as_ptr());
            null_mut()
        }
    }
}

/// Calls `f` with the positional and keyword arguments put in declared order. Runs no Python
/// code (names are compared by identity, then by value with PyUnicode_Compare), so the entry
/// still pins its keeper itself.
#[inline(never)]
unsafe fn with_keywords(s: *mut Slot, f: FastFn, args: *const Obj, nargs: Ssize, kwnames: Obj) -> Obj {
    let name = (*s).name;
    let params = (*s).params;
    let listed = (*s).params_text;
    let n = if params.is_null() { 0 } else { PyTuple_Size(params) };
    let nkw = PyTuple_Size(kwnames);
    if nkw == 0 {
        return f(s as Obj, args, nargs);
    }
    if nargs > n {
        return PyErr_Format(
            PyExc_TypeError,
            c"%s() takes %zd argument(s), got %zd positional and %zd keyword".as_ptr(),
            name, n, nargs, nkw,
        );
    }
    let mut ordered: Vec<Obj> = vec![null_mut(); n as usize];
    std::ptr::copy_nonoverlapping(args, ordered.as_mut_ptr(), nargs as usize);
    for j in 0..nkw {
        let key = PyTuple_GetItem(kwnames, j);
        let mut at = None;
        for i in 0..n {
            if PyTuple_GetItem(params, i) == key {
                at = Some(i);
                break;
            }
        }
        if at.is_none() {
            for i in 0..n {
                if PyUnicode_Compare(PyTuple_GetItem(params, i), key) == 0 {
                    at = Some(i);
                    break;
                }
            }
            if !PyErr_Occurred().is_null() {
                return null_mut();
            }
        }
        let Some(i) = at else {
            return PyErr_Format(
                PyExc_TypeError,
                c"%s() got an unexpected keyword argument '%U' (parameters: %s)".as_ptr(),
                name, key, listed,
            );
        };
        let cell = ordered.as_mut_ptr().add(i as usize);
        if !(*cell).is_null() {
            return PyErr_Format(
                PyExc_TypeError,
                c"%s() got multiple values for argument '%U'".as_ptr(),
                name, key,
            );
        }
        *cell = *args.add((nargs + j) as usize);
    }
    for i in 0..n {
        if ordered[i as usize].is_null() {
            return PyErr_Format(
                PyExc_TypeError,
                c"%s() missing argument %zd '%U' (parameters: %s)".as_ptr(),
                name, i + 1, PyTuple_GetItem(params, i), listed,
            );
        }
    }
    f(s as Obj, ordered.as_ptr(), n)
}

unsafe fn none() -> Obj {
    let n = addr_of_mut!(_Py_NoneStruct);
    Py_IncRef(n);
    n
}

unsafe fn utf8(o: Obj) -> Option<CString> {
    let mut n: Ssize = 0;
    let p = PyUnicode_AsUTF8AndSize(o, &mut n);
    if p.is_null() {
        return None;
    }
    let bytes = std::slice::from_raw_parts(p as *const u8, n as usize);
    match CString::new(bytes) {
        Ok(c) => Some(c),
        Err(_) => {
            PyErr_SetString(PyExc_TypeError, c"embedded NUL character".as_ptr());
            None
        }
    }
}

unsafe fn slot_of(f: Obj) -> *mut Slot {
    let s = PyCFunction_GetSelf(f);
    if s.is_null() || (*s).ob_type as Obj != SLOT_TYPE {
        if PyErr_Occurred().is_null() {
            PyErr_SetString(PyExc_TypeError, c"not a symbiont dispatcher".as_ptr());
        }
        return null_mut();
    }
    s as *mut Slot
}

/// new(name: str, doc: str, module: str, params: tuple[str, ...]) -> builtin with no target
unsafe extern "C" fn tr_new(_m: Obj, args: *const Obj, nargs: Ssize) -> Obj {
    if nargs != 4 || PyTuple_Size(*args.add(3)) < 0 {
        PyErr_Clear();
        PyErr_SetString(PyExc_TypeError, c"new(name, doc, module, params: tuple)".as_ptr());
        return null_mut();
    }
    let Some(name) = utf8(*args) else { return null_mut() };
    let Some(doc) = utf8(*args.add(1)) else { return null_mut() };
    let mut listed: Vec<u8> = Vec::new();
    for i in 0..PyTuple_Size(*args.add(3)) {
        let Some(p) = utf8(PyTuple_GetItem(*args.add(3), i)) else { return null_mut() };
        if i > 0 {
            listed.extend_from_slice(b", ");
        }
        listed.extend_from_slice(p.as_bytes());
    }
    let listed = CString::new(listed).unwrap_or_default();
    let o = PyType_GenericAlloc(SLOT_TYPE, 0);
    if o.is_null() {
        return null_mut();
    }
    let s = o as *mut Slot;
    (*s).entry = None;
    (*s).keeper = null_mut();
    (*s).timeout_ns = 0;
    (*s).flags = 0;
    (*s).name = name.into_raw();
    (*s).doc = doc.into_raw();
    (*s).params_text = listed.into_raw();
    Py_IncRef(*args.add(3));
    (*s).params = *args.add(3);
    (*s).def = PyMethodDef {
        ml_name: (*s).name,
        ml_meth: dispatch as FastKwFn as *const c_void,
        ml_flags: METH_FASTCALL | METH_KEYWORDS,
        ml_doc: (*s).doc,
    };
    // The builtin borrows `def` from the slot and owns a reference to the slot as its `self`.
    let f = PyCFunction_NewEx(addr_of_mut!((*s).def), o, *args.add(2));
    Py_DecRef(o);
    f
}

/// retarget(fn, entry_address: int, keeper) -> None; entry 0 clears the target.
unsafe extern "C" fn tr_retarget(_m: Obj, args: *const Obj, nargs: Ssize) -> Obj {
    if nargs != 3 {
        PyErr_SetString(PyExc_TypeError, c"retarget(fn, entry, keeper)".as_ptr());
        return null_mut();
    }
    let s = slot_of(*args);
    if s.is_null() {
        return null_mut();
    }
    let addr = PyLong_AsVoidPtr(*args.add(1));
    if addr.is_null() && !PyErr_Occurred().is_null() {
        return null_mut();
    }
    let keeper = *args.add(2);
    let old = (*s).keeper;
    if addr.is_null() {
        (*s).entry = None;
        (*s).keeper = null_mut();
    } else {
        Py_IncRef(keeper);
        (*s).keeper = keeper;
        (*s).entry = Some(std::mem::transmute::<*mut c_void, FastFn>(addr));
    }
    // Released last: dropping the old keeper may unload its library, never one still in use.
    if !old.is_null() {
        Py_DecRef(old);
    }
    none()
}

/// target(fn) -> keeper or None
unsafe extern "C" fn tr_target(_m: Obj, f: Obj) -> Obj {
    let s = slot_of(f);
    if s.is_null() {
        return null_mut();
    }
    if (*s).keeper.is_null() {
        return none();
    }
    Py_IncRef((*s).keeper);
    (*s).keeper
}

/// entry(fn) -> int address of the current entry point (0 when none)
unsafe extern "C" fn tr_entry(_m: Obj, f: Obj) -> Obj {
    let s = slot_of(f);
    if s.is_null() {
        return null_mut();
    }
    PyLong_FromVoidPtr(match (*s).entry {
        Some(e) => e as *mut c_void,
        None => null_mut(),
    })
}

/// set_timeout(fn, nanoseconds: int) -> None; 0 means no deadline.
unsafe extern "C" fn tr_set_timeout(_m: Obj, args: *const Obj, nargs: Ssize) -> Obj {
    if nargs != 2 {
        PyErr_SetString(PyExc_TypeError, c"set_timeout(fn, nanoseconds)".as_ptr());
        return null_mut();
    }
    let s = slot_of(*args);
    if s.is_null() {
        return null_mut();
    }
    let ns = PyLong_AsUnsignedLongLong(*args.add(1));
    if ns == u64::MAX && !PyErr_Occurred().is_null() {
        return null_mut();
    }
    (*s).timeout_ns = ns;
    none()
}

/// timeout(fn) -> int nanoseconds (0: no deadline)
unsafe extern "C" fn tr_timeout(_m: Obj, f: Obj) -> Obj {
    let s = slot_of(f);
    if s.is_null() {
        return null_mut();
    }
    PyLong_FromUnsignedLongLong((*s).timeout_ns)
}

/// set_release_gil(fn, on: bool) -> None
unsafe extern "C" fn tr_set_release_gil(_m: Obj, args: *const Obj, nargs: Ssize) -> Obj {
    if nargs != 2 {
        PyErr_SetString(PyExc_TypeError, c"set_release_gil(fn, on)".as_ptr());
        return null_mut();
    }
    let s = slot_of(*args);
    if s.is_null() {
        return null_mut();
    }
    let on = PyObject_IsTrue(*args.add(1));
    if on < 0 {
        return null_mut();
    }
    if on == 1 {
        (*s).flags |= SLOT_RELEASE_GIL;
    } else {
        (*s).flags &= !SLOT_RELEASE_GIL;
    }
    none()
}

/// releases_gil(fn) -> bool
unsafe extern "C" fn tr_releases_gil(_m: Obj, f: Obj) -> Obj {
    let s = slot_of(f);
    if s.is_null() {
        return null_mut();
    }
    PyBool_FromLong(c_long::from((*s).flags & SLOT_RELEASE_GIL != 0))
}

/// api() -> int address of the `Api` table handed to every revision library at init.
unsafe extern "C" fn tr_api(_m: Obj, _a: Obj) -> Obj {
    PyLong_FromVoidPtr(addr_of!(API.0) as *mut c_void)
}

static mut METHODS: [PyMethodDef; 11] = [
    PyMethodDef { ml_name: c"set_release_gil".as_ptr(), ml_meth: tr_set_release_gil as *const c_void, ml_flags: METH_FASTCALL, ml_doc: null() },
    PyMethodDef { ml_name: c"releases_gil".as_ptr(), ml_meth: tr_releases_gil as *const c_void, ml_flags: METH_O, ml_doc: null() },
    PyMethodDef { ml_name: c"catch_sigint".as_ptr(), ml_meth: tr_catch_sigint as *const c_void, ml_flags: METH_NOARGS, ml_doc: null() },
    PyMethodDef { ml_name: c"set_timeout".as_ptr(), ml_meth: tr_set_timeout as *const c_void, ml_flags: METH_FASTCALL, ml_doc: null() },
    PyMethodDef { ml_name: c"timeout".as_ptr(), ml_meth: tr_timeout as *const c_void, ml_flags: METH_O, ml_doc: null() },
    PyMethodDef { ml_name: c"api".as_ptr(), ml_meth: tr_api as *const c_void, ml_flags: METH_NOARGS, ml_doc: null() },
    PyMethodDef { ml_name: c"new".as_ptr(), ml_meth: tr_new as *const c_void, ml_flags: METH_FASTCALL, ml_doc: null() },
    PyMethodDef { ml_name: c"retarget".as_ptr(), ml_meth: tr_retarget as *const c_void, ml_flags: METH_FASTCALL, ml_doc: null() },
    PyMethodDef { ml_name: c"target".as_ptr(), ml_meth: tr_target as *const c_void, ml_flags: METH_O, ml_doc: null() },
    PyMethodDef { ml_name: c"entry".as_ptr(), ml_meth: tr_entry as *const c_void, ml_flags: METH_O, ml_doc: null() },
    PyMethodDef { ml_name: null(), ml_meth: null(), ml_flags: 0, ml_doc: null() },
];

static mut MODULE: PyModuleDef = PyModuleDef {
    m_base: PyModuleDefBase {
        ob_base: PyObject { ob_refcnt: 1, ob_type: null_mut() },
        m_init: None,
        m_index: 0,
        m_copy: null_mut(),
    },
    m_name: c"_symbiont_trampoline".as_ptr(),
    m_doc: c"symbiont's dispatcher trampoline (internal)".as_ptr(),
    m_size: -1,
    m_methods: null_mut(),
    m_slots: null_mut(),
    m_traverse: null_mut(),
    m_clear: null_mut(),
    m_free: null_mut(),
};

static mut SLOTS: [PyTypeSlot; 3] = [
    PyTypeSlot { slot: Py_tp_dealloc, pfunc: slot_dealloc as *mut c_void },
    PyTypeSlot { slot: Py_tp_doc, pfunc: c"The target of a symbiont dispatcher.".as_ptr() as *mut c_void },
    PyTypeSlot { slot: 0, pfunc: null_mut() },
];

static mut SPEC: PyTypeSpec = PyTypeSpec {
    name: c"symbiont.RustFunction".as_ptr(),
    basicsize: std::mem::size_of::<Slot>() as c_int,
    itemsize: 0,
    flags: Py_TPFLAGS_DEFAULT,
    slots: null_mut(),
};

// ---------------------------------------------------------------- watchdog and guards

// Records (abi.rs `Record`): one per live thread that ran a guarded call. Never freed (the
// watchdog and libraries hold raw pointers to them): a thread's record returns to a free list
// when the thread exits and the next new thread takes it.

struct Shared(Api);
unsafe impl Sync for Shared {}

static PENDING: AtomicU32 = AtomicU32::new(0);
static PARKED: AtomicBool = AtomicBool::new(true);
// Whether this process has its watchdog thread (reset in a forked child, which has none).
static STARTED: AtomicBool = AtomicBool::new(false);
static RECORDS: Mutex<Vec<usize>> = Mutex::new(Vec::new());
static FREE: Mutex<Vec<usize>> = Mutex::new(Vec::new());
static WATCHDOG: Mutex<Option<std::thread::Thread>> = Mutex::new(None);

static API: Shared = Shared(Api {
    version: API_VERSION,
    pending: &PENDING,
    record,
    wake,
    parked: &PARKED,
    lent: &LENT_COUNT,
    lend,
    unlend,
    conflicts,
    interrupt: &INTERRUPT,
    interrupt_claim,
    interrupt_done,
    main: &MAIN,
});

// ---------------------------------------------------------------- lent memory
// Byte ranges held by calls that released the GIL (`rt.map`), with whether they are written.
// Changed and read only with the GIL held; the count lets every other call skip the lookup.

static LENT_COUNT: AtomicUsize = AtomicUsize::new(0);
static LENT: Mutex<Vec<(usize, usize, usize, bool)>> = Mutex::new(Vec::new());
static TICKETS: AtomicUsize = AtomicUsize::new(1);

unsafe extern "C" fn lend(start: usize, len: usize, mutable: bool) -> usize {
    let ticket = TICKETS.fetch_add(1, Ordering::Relaxed);
    let mut lent = LENT.lock().unwrap_or_else(|e| e.into_inner());
    lent.push((ticket, start, len, mutable));
    LENT_COUNT.store(lent.len(), Ordering::Relaxed);
    ticket
}

unsafe extern "C" fn unlend(ticket: usize) {
    let mut lent = LENT.lock().unwrap_or_else(|e| e.into_inner());
    lent.retain(|l| l.0 != ticket);
    LENT_COUNT.store(lent.len(), Ordering::Relaxed);
}

unsafe extern "C" fn conflicts(start: usize, len: usize, mutable: bool) -> bool {
    let lent = LENT.lock().unwrap_or_else(|e| e.into_inner());
    lent.iter().any(|&(_, a, n, m)| (m || mutable) && start < a + n && a < start + len)
}

/// This thread's record; handed back to FREE when the thread exits (this module is never
/// unloaded, so a TLS destructor here is harmless).
struct Mine(Cell<*mut Record>);

impl Drop for Mine {
    fn drop(&mut self) {
        let r = self.0.get();
        if !r.is_null() {
            unsafe {
                // An unfinished call cannot outlive its thread; make sure nothing looks armed.
                let rec = &*r;
                if rec.seq.load(Ordering::SeqCst) % 2 == 1 {
                    rec.seq.fetch_add(1, Ordering::SeqCst);
                }
                if rec.flag.swap(0, Ordering::SeqCst) != 0 {
                    PENDING.fetch_sub(1, Ordering::SeqCst);
                }
                rec.interruptible.store(0, Ordering::SeqCst);
                let _ = MAIN.compare_exchange(r, null_mut(), Ordering::SeqCst, Ordering::SeqCst);
            }
            FREE.lock().unwrap_or_else(|e| e.into_inner()).push(r as usize);
        }
    }
}

thread_local! {
    static MINE: Mine = const { Mine(Cell::new(null_mut())) };
}

// Stack kept clear below the guard's limit for the deepest frame between two checks and for
// unwinding (the Python error path runs after the unwinding, higher up): 256 KiB, or a quarter
// of a smaller thread's stack, so threads of 512 KiB or less are guarded too.
const STACK_MARGIN: usize = 256 * 1024;

extern "C" {
    fn pthread_self() -> usize;
    fn pthread_getattr_np(thread: usize, attr: *mut u64) -> c_int;
    fn pthread_attr_getstack(attr: *const u64, addr: *mut *mut c_void, size: *mut usize) -> c_int;
    fn pthread_attr_destroy(attr: *mut u64) -> c_int;
}

unsafe fn stack_low() -> usize {
    let mut attr = [0u64; 16]; // pthread_attr_t is 56 bytes on x86_64/aarch64 glibc
    if pthread_getattr_np(pthread_self(), attr.as_mut_ptr()) != 0 {
        return 0;
    }
    let mut addr: *mut c_void = null_mut();
    let mut size: usize = 0;
    let ok = pthread_attr_getstack(attr.as_ptr(), &mut addr, &mut size) == 0;
    pthread_attr_destroy(attr.as_mut_ptr());
    if !ok || size == 0 {
        return 0;
    }
    addr as usize + (size / 4).min(STACK_MARGIN)
}

unsafe extern "C" fn record() -> *mut Record {
    let found = MINE.try_with(|m| {
        let mut r = m.0.get();
        if r.is_null() {
            let reused = FREE.lock().unwrap_or_else(|e| e.into_inner()).pop();
            r = match reused {
                Some(addr) => {
                    let rec = addr as *mut Record;
                    (*rec).stack_low.store(stack_low(), Ordering::SeqCst);
                    (*rec).interruptible.store(0, Ordering::SeqCst);
                    rec
                }
                None => {
                    let rec = Box::into_raw(Box::new(Record {
                        flag: AtomicU32::new(0),
                        seq: AtomicU64::new(0),
                        timeout_ns: AtomicU64::new(0),
                        stack_low: AtomicUsize::new(stack_low()),
                        interruptible: AtomicU32::new(0),
                    }));
                    RECORDS.lock().unwrap_or_else(|e| e.into_inner()).push(rec as usize);
                    rec
                }
            };
            m.0.set(r);
        }
        r
    });
    // During thread teardown there is no record to give: the caller runs unguarded.
    found.unwrap_or(null_mut())
}

// Scanning every millisecond keeps the time from deadline to TimeoutError small; after a
// second with nothing armed the thread parks until the next armed call wakes it.
const TICK: Duration = Duration::from_millis(1);
const IDLE_TICKS: u32 = 1000;

fn watch() {
    let mut seen: HashMap<usize, (u64, Instant)> = HashMap::new();
    let mut idle = 0u32;
    loop {
        std::thread::sleep(TICK);
        let now = Instant::now();
        let records: Vec<usize> = RECORDS.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut armed = 0;
        for addr in records {
            let rec = unsafe { &*(addr as *const Record) };
            let seq = rec.seq.load(Ordering::SeqCst);
            if seq % 2 == 0 {
                seen.remove(&addr);
                continue;
            }
            armed += 1;
            match seen.get(&addr) {
                Some(&(s, since)) if s == seq => {
                    let limit = Duration::from_nanos(rec.timeout_ns.load(Ordering::Relaxed));
                    let f = flag_for(seq);
                    if now.duration_since(since) >= limit
                        && rec.flag.compare_exchange(0, f, Ordering::SeqCst, Ordering::SeqCst).is_ok()
                    {
                        PENDING.fetch_add(1, Ordering::SeqCst);
                        // The call may have ended between reading seq and raising the flag: then
                        // lower it again, unless its thread already did (whoever clears it
                        // decrements PENDING). Until then the flag names the ended call's seq,
                        // so the thread's next call does not take it for its own.
                        if rec.seq.load(Ordering::SeqCst) != seq
                            && rec.flag.compare_exchange(f, 0, Ordering::SeqCst, Ordering::SeqCst).is_ok()
                        {
                            PENDING.fetch_sub(1, Ordering::SeqCst);
                        }
                    }
                }
                _ => {
                    seen.insert(addr, (seq, now));
                }
            }
        }
        if armed == 0 {
            idle += 1;
            if idle >= IDLE_TICKS {
                idle = 0;
                PARKED.store(true, Ordering::SeqCst);
                // An arm that raced with parking saw PARKED false and did not wake us: look
                // again before sleeping.
                let again = RECORDS
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .iter()
                    .any(|&a| unsafe { &*(a as *const Record) }.seq.load(Ordering::SeqCst) % 2 == 1);
                if !again {
                    std::thread::park();
                }
                PARKED.store(false, Ordering::SeqCst);
            }
        } else {
            idle = 0;
        }
    }
}

unsafe extern "C" fn wake() {
    if !STARTED.load(Ordering::SeqCst) {
        let mut w = WATCHDOG.lock().unwrap_or_else(|e| e.into_inner());
        if !STARTED.load(Ordering::SeqCst) {
            // Without a watchdog deadlines cannot fire; the calls themselves still work, so a
            // failure to start it must not take the host down (this module aborts on panic).
            if let Ok(h) = std::thread::Builder::new().name("symbiont-watchdog".into()).spawn(watch) {
                *w = Some(h.thread().clone());
            }
            STARTED.store(true, Ordering::SeqCst);
        }
    }
    if PARKED.swap(false, Ordering::SeqCst) {
        if let Some(t) = WATCHDOG.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            t.unpark();
        }
    }
}

// ---------------------------------------------------------------- fork
// A forked child (multiprocessing's default start method on Linux) inherits this module's state
// but only the forking thread: no watchdog, and records of threads that do not exist. The locks
// are taken around fork so the child never inherits one held by a thread it does not have.

extern "C" {
    fn pthread_atfork(
        prepare: Option<unsafe extern "C" fn()>, parent: Option<unsafe extern "C" fn()>,
        child: Option<unsafe extern "C" fn()>,
    ) -> c_int;
}

type Held = (
    std::sync::MutexGuard<'static, Option<std::thread::Thread>>,
    std::sync::MutexGuard<'static, Vec<usize>>,
    std::sync::MutexGuard<'static, Vec<usize>>,
);

thread_local! {
    // The locks the forking thread holds between prepare and parent/child.
    static HELD: std::cell::RefCell<Option<Held>> = const { std::cell::RefCell::new(None) };
}

unsafe extern "C" fn before_fork() {
    let held = (
        WATCHDOG.lock().unwrap_or_else(|e| e.into_inner()),
        FREE.lock().unwrap_or_else(|e| e.into_inner()),
        RECORDS.lock().unwrap_or_else(|e| e.into_inner()),
    );
    HELD.with(|h| *h.borrow_mut() = Some(held));
}

unsafe extern "C" fn after_fork_parent() {
    HELD.with(|h| drop(h.borrow_mut().take()));
}

unsafe extern "C" fn after_fork_child() {
    let Some((mut watchdog, mut free, records)) = HELD.with(|h| h.borrow_mut().take()) else {
        return;
    };
    *watchdog = None;
    STARTED.store(false, Ordering::SeqCst);
    PARKED.store(true, Ordering::SeqCst); // the next armed call starts a new watchdog
    let mine = MINE.try_with(|m| m.0.get() as usize).unwrap_or(0);
    let mut pending = 0;
    for &addr in records.iter() {
        let rec = &*(addr as *const Record);
        if addr != mine {
            // Its thread does not exist here: nothing of it is armed, and the record is free.
            if rec.seq.load(Ordering::SeqCst) % 2 == 1 {
                rec.seq.fetch_add(1, Ordering::SeqCst);
            }
            rec.flag.store(0, Ordering::SeqCst);
            if !free.contains(&addr) {
                free.push(addr);
            }
        } else if rec.flag.load(Ordering::SeqCst) != 0 {
            pending += 1;
        }
    }
    PENDING.store(pending, Ordering::SeqCst);
    // Calls that lent memory ran on threads the child does not have.
    LENT.lock().unwrap_or_else(|e| e.into_inner()).clear();
    LENT_COUNT.store(0, Ordering::SeqCst);
    // Only the forking thread exists here: it is the main thread of the child if anything.
    if MAIN.load(Ordering::SeqCst) as usize != mine {
        MAIN.store(null_mut(), Ordering::SeqCst);
    }
    if INTERRUPT.swap(0, Ordering::SeqCst) != 0 {
        PENDING.fetch_sub(1, Ordering::SeqCst);
    }
}

// ---------------------------------------------------------------- Ctrl-C
// Python's own SIGINT handler only trips a flag that the eval loop checks, so a native call
// would run to its end before KeyboardInterrupt. `catch_sigint` (called from Python while the
// Python-level handler is `signal.default_int_handler`, on the main thread) installs a C
// handler in front of Python's: it raises INTERRUPT (counted in PENDING, so the guards of every
// loop look) and then calls Python's handler, which trips Python's flag as before. The guard of
// the main thread's native call (or of a worker of the main thread's `rt.map` or GIL-releasing
// call, marked `interruptible`) claims it and unwinds; the entry then runs Python's pending
// handler with the GIL held, which raises KeyboardInterrupt. Any later `signal.signal(SIGINT,
// ...)` replaces this C handler (CPython installs its own with sigaction each time), so a user's
// handler is never bypassed; symbiont installs it again only while the default is back.

static INTERRUPT: AtomicU32 = AtomicU32::new(0);
static MAIN: AtomicPtr<Record> = AtomicPtr::new(null_mut());
// When a guard of another thread first met the raised interrupt (ns on `clock_ns`, 0: not yet).
// While it is raised every guard of every thread takes the slow path; an interrupt no call
// claimed for a while (the main thread was running Python, which raises KeyboardInterrupt
// itself) is dropped then, so calls in other threads get their speed back.
static UNCLAIMED_SINCE: AtomicU64 = AtomicU64::new(0);
const UNCLAIMED_NS: u64 = 200_000_000;

fn clock_ns() -> u64 {
    static BASE: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    (BASE.get_or_init(Instant::now).elapsed().as_nanos() as u64).max(1)
}

const SIGINT: c_int = 2;
const SA_SIGINFO: c_int = 4;
const SIG_IGN: usize = 1;

/// glibc's `struct sigaction` (x86_64 and aarch64 Linux).
#[repr(C)]
#[derive(Clone, Copy)]
struct SigAction {
    handler: usize,
    mask: [u64; 16],
    flags: c_int,
    restorer: usize,
}

extern "C" {
    fn sigaction(sig: c_int, act: *const SigAction, old: *mut SigAction) -> c_int;
}

// The handler that was installed before ours (Python's), called after ours.
static mut PREVIOUS: SigAction = SigAction { handler: 0, mask: [0; 16], flags: 0, restorer: 0 };

/// Async-signal-safe: atomics only, then the previous handler.
unsafe extern "C" fn on_sigint(sig: c_int, info: *mut c_void, ctx: *mut c_void) {
    UNCLAIMED_SINCE.store(0, Ordering::SeqCst);
    if !MAIN.load(Ordering::SeqCst).is_null()
        && INTERRUPT.compare_exchange(0, 1, Ordering::SeqCst, Ordering::SeqCst).is_ok()
    {
        PENDING.fetch_add(1, Ordering::SeqCst);
    }
    let prev = *addr_of!(PREVIOUS);
    if prev.handler > SIG_IGN {
        if prev.flags & SA_SIGINFO != 0 {
            let f: unsafe extern "C" fn(c_int, *mut c_void, *mut c_void) = std::mem::transmute(prev.handler);
            f(sig, info, ctx);
        } else {
            let f: unsafe extern "C" fn(c_int) = std::mem::transmute(prev.handler);
            f(sig);
        }
    }
}

/// catch_sigint() -> bool: installs the handler above (the caller checked that this is the main
/// thread and that Python's handler is the default one); False if it already is installed.
unsafe extern "C" fn tr_catch_sigint(_m: Obj, _a: Obj) -> Obj {
    let mut current = SigAction { handler: 0, mask: [0; 16], flags: 0, restorer: 0 };
    if sigaction(SIGINT, null(), &mut current) != 0 || current.handler == on_sigint as usize {
        return PyBool_FromLong(0);
    }
    if current.handler <= SIG_IGN {
        return PyBool_FromLong(0); // nobody turns SIGINT into KeyboardInterrupt: leave it be
    }
    let r = record();
    if r.is_null() {
        return PyBool_FromLong(0);
    }
    *addr_of_mut!(PREVIOUS) = current;
    MAIN.store(r, Ordering::SeqCst);
    let ours = SigAction {
        handler: on_sigint as usize,
        mask: current.mask,
        flags: current.flags | SA_SIGINFO,
        restorer: 0,
    };
    PyBool_FromLong(c_long::from(sigaction(SIGINT, &ours, null_mut()) == 0))
}

#[cold]
#[inline(never)]
fn drop_stale_interrupt() {
    // With the GIL held no GIL-holding call of the main thread runs; one that released it
    // marked the main thread's record, and keeps the interrupt.
    let main = MAIN.load(Ordering::SeqCst);
    if main.is_null() || unsafe { (*main).interruptible.load(Ordering::SeqCst) } == 0 {
        unsafe { interrupt_done() };
    }
}

unsafe extern "C" fn interrupt_claim() -> bool {
    let r = MINE.try_with(|m| m.0.get()).unwrap_or(null_mut());
    if r.is_null() || INTERRUPT.load(Ordering::SeqCst) == 0 {
        return false;
    }
    // A guard of the main thread runs inside a native call of it; a stale interrupt was dropped
    // when that call was dispatched.
    if (*r).interruptible.load(Ordering::SeqCst) != 0 || r == MAIN.load(Ordering::SeqCst) {
        return true;
    }
    let now = clock_ns();
    if let Err(since) = UNCLAIMED_SINCE.compare_exchange(0, now, Ordering::SeqCst, Ordering::SeqCst) {
        if now.saturating_sub(since) > UNCLAIMED_NS {
            interrupt_done();
        }
    }
    false
}

unsafe extern "C" fn interrupt_done() {
    if INTERRUPT.compare_exchange(1, 0, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
        PENDING.fetch_sub(1, Ordering::SeqCst);
    }
    UNCLAIMED_SINCE.store(0, Ordering::SeqCst);
}

#[no_mangle]
pub unsafe extern "C" fn PyInit__symbiont_trampoline() -> Obj {
    pthread_atfork(Some(before_fork), Some(after_fork_parent), Some(after_fork_child));
    let spec = addr_of_mut!(SPEC);
    (*spec).slots = addr_of_mut!(SLOTS) as *mut PyTypeSlot;
    let tp = PyType_FromSpec(spec);
    if tp.is_null() {
        return null_mut();
    }
    SLOT_TYPE = tp;
    let def = addr_of_mut!(MODULE);
    (*def).m_methods = addr_of_mut!(METHODS) as *mut PyMethodDef;
    let m = PyModule_Create2(def, 3 /* PYTHON_ABI_VERSION */);
    if m.is_null() {
        return null_mut();
    }
    Py_IncRef(tp);
    if PyModule_AddObject(m, c"Dispatcher".as_ptr(), tp) < 0 {
        Py_DecRef(tp);
        Py_DecRef(m);
        return null_mut();
    }
    m
}

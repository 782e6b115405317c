
// ---------------------------------------------------------------- shared types (rt_types.rs)
//
// Appended to rt.rs (same module): #[repr(C)] structs as numpy records and structured arrays,
// fieldless enums as IntEnum members. The generated crate implements `Struct`/`Enum` for each
// declared type after asserting, at compile time, that rustc's layout is the one Python assumes
// (size, alignment, every field offset and type): the format string compared here then proves
// the buffer holds exactly such values. Every path below runs with the keeper pinned: buffer
// exporters and keeper callbacks may run Python code.

extern "C" {
    fn PyBytes_FromStringAndSize(s: *const c_char, n: Ssize) -> Obj;
    fn PyByteArray_FromStringAndSize(s: *const c_char, n: Ssize) -> Obj;
    fn PyCapsule_New(p: *mut c_void, name: *const c_char, destructor: unsafe extern "C" fn(Obj)) -> Obj;
    fn PyCapsule_GetPointer(capsule: Obj, name: *const c_char) -> *mut c_void;
    fn PyCapsule_GetContext(capsule: Obj) -> *mut c_void;
    fn PyCapsule_SetContext(capsule: Obj, context: *mut c_void) -> c_int;
    fn PyType_GenericAlloc(t: Obj, n: Ssize) -> Obj;
    fn PyTuple_Size(t: Obj) -> Ssize;
    fn PyTuple_GetItem(t: Obj, i: Ssize) -> Obj;
    static mut PyTuple_Type: Opaque;
}

/// A `#[repr(C)]` struct whose layout the generated crate asserted against Python's.
///
/// # Safety
/// `FORMAT` must describe exactly `Self`'s layout and `BOOLS` every bool byte in it.
pub unsafe trait Struct: Sized + Field {
    /// The NUL-terminated buffer format numpy exports for the matching structured dtype.
    const FORMAT: &'static [u8];
    /// Byte offsets of the bool fields: any other byte than 0 or 1 there is not a valid value.
    const BOOLS: &'static [usize];
    /// The struct's name in `rt.types`.
    const NAME: &'static std::ffi::CStr;
    /// Its light record class, once the keeper handed it over.
    fn light() -> &'static LightClass;
    /// Writes the fields into the light record `o` (an instance of `light()`).
    unsafe fn write_light(&self, o: Obj, k: Obj) -> bool;
}

/// A fieldless enum with an integer representation `Repr`; `VALUES` are its discriminants.
///
/// # Safety
/// Every value of `VALUES` must be the discriminant of a variant, and `Self` as big as `Repr`.
pub unsafe trait Enum: Sized + Copy {
    type Repr: FromPy + Ret + Copy + PartialEq + 'static;
    const VALUES: &'static [Self::Repr];
}

#[inline(always)]
unsafe fn format_is(fmt: *const c_char, want: &[u8]) -> bool {
    !fmt.is_null() && std::ffi::CStr::from_ptr(fmt).to_bytes_with_nul() == want
}

unsafe fn release_view(v: &mut View) {
    if v.held {
        PyBuffer_Release(&mut v.view);
        v.held = false;
    }
}

/// `o` as a C-contiguous buffer of `S` (start, count), or None with no Python error pending and
/// nothing held.
unsafe fn try_records<S: Struct>(o: Obj, v: &mut View, writable: bool) -> Option<(*mut S, usize)> {
    let flags = PYBUF_FORMAT | PYBUF_C_CONTIGUOUS | if writable { PYBUF_WRITABLE } else { 0 };
    if PyObject_GetBuffer(o, &mut v.view, flags) != 0 {
        PyErr_Clear();
        return None;
    }
    v.held = true;
    let size = std::mem::size_of::<S>();
    let p = v.view.buf as *mut S;
    let len = v.view.len as usize;
    let ok = format_is(v.view.format, S::FORMAT)
        && v.view.itemsize as usize == size
        && len % size == 0
        && (p as usize) % std::mem::align_of::<S>() == 0;
    if !ok || !record_bools_ok::<S>(p as *const u8, len / size) {
        release_view(v);
        return None;
    }
    Some((p, len / size))
}

unsafe fn record_bools_ok<S: Struct>(p: *const u8, n: usize) -> bool {
    if S::BOOLS.is_empty() {
        return true;
    }
    let size = std::mem::size_of::<S>();
    (0..n).all(|i| S::BOOLS.iter().all(|&o| *p.add(i * size + o) <= 1))
}

/// Records of `o`, or of the equivalent view the keeper offers (`_coerce(.., 1)`: an array of an
/// equal but differently spelled dtype); otherwise the keeper raises the reason.
unsafe fn records<S: Struct>(
    pin: &mut Pin, fi: Ssize, pi: Ssize, o: Obj, v: &mut View, writable: bool,
) -> Result<(*mut S, usize), ()> {
    let k = pin.hold();
    if let Some(r) = try_records::<S>(o, v, writable) {
        return Ok(r);
    }
    let n = PyObject_CallMethod(k, c"_coerce".as_ptr(), c"nnOi".as_ptr(), fi, pi, o, 1 as c_int);
    if n.is_null() {
        return Err(());
    }
    let r = try_records::<S>(n, v, writable);
    Py_DecRef(n); // a held view owns its own reference to the exporter
    match r {
        Some(r) => Ok(r),
        None => {
            arg_error(pin, fi, pi, o);
            Err(())
        }
    }
}

/// Re-checks the bool fields of records held in place once every argument is acquired: a later
/// argument's `__index__` or buffer exporter may have written other bytes there.
pub unsafe fn rec_still_valid<S: Struct>(pin: &mut Pin, fi: Ssize, pi: Ssize, o: Obj, v: &View) -> bool {
    let n = v.view.len as usize / std::mem::size_of::<S>();
    if !v.held || record_bools_ok::<S>(v.view.buf as *const u8, n) {
        return true;
    }
    arg_error(pin, fi, pi, o);
    false
}

/// `&[S]`: a structured array of the declared dtype, zero copy.
pub unsafe fn rec_slice<'a, S: Struct>(
    pin: &mut Pin, fi: Ssize, pi: Ssize, o: Obj, v: &mut View,
) -> Result<&'a [S], ()> {
    let (p, n) = records::<S>(pin, fi, pi, o, v, false)?;
    let p = if n == 0 { std::ptr::NonNull::<S>::dangling().as_ptr() } else { p };
    Ok(std::slice::from_raw_parts(p, n))
}

/// `&mut [S]`: a writable structured array of the declared dtype, zero copy.
pub unsafe fn rec_slice_mut<'a, S: Struct>(
    pin: &mut Pin, fi: Ssize, pi: Ssize, o: Obj, v: &mut View,
) -> Result<&'a mut [S], ()> {
    let (p, n) = records::<S>(pin, fi, pi, o, v, true)?;
    let p = if n == 0 { std::ptr::NonNull::<S>::dangling().as_ptr() } else { p };
    Ok(std::slice::from_raw_parts_mut(p, n))
}

/// `S` and `&S`: one record (a numpy record, a 1-element structured array), copied out.
pub unsafe fn rec_value<S: Struct>(pin: &mut Pin, fi: Ssize, pi: Ssize, o: Obj) -> Result<S, ()> {
    // A light record (rt.types.S(...), or returned by a function) is read without Python code.
    if let Some(value) = S::from_field(o) {
        return Ok(value);
    }
    rec_value_slow(pin, fi, pi, o)
}

#[inline(never)]
unsafe fn rec_value_slow<S: Struct>(pin: &mut Pin, fi: Ssize, pi: Ssize, o: Obj) -> Result<S, ()> {
    let k = pin.hold();
    if !S::light().ready() {
        if !light_ready(S::light(), k, S::NAME) {
            return Err(());
        }
        if let Some(value) = S::from_field(o) {
            return Ok(value);
        }
    }
    let mut v = View::new();
    let (p, n) = records::<S>(pin, fi, pi, o, &mut v, false)?;
    if n != 1 {
        release_view(&mut v);
        arg_error(pin, fi, pi, o);
        return Err(());
    }
    let value = std::ptr::read(p);
    release_view(&mut v);
    Ok(value)
}

/// `&mut S`: a writable 1-element structured array is written in place; a record whose buffer
/// is read-only (numpy's record scalars) is copied into `tmp` and written back by `rec_back`.
pub unsafe fn rec_mut<'a, S: Struct>(
    pin: &mut Pin, fi: Ssize, pi: Ssize, o: Obj, v: &mut View, tmp: &'a mut std::mem::MaybeUninit<S>,
) -> Result<&'a mut S, ()> {
    pin.hold();
    if let Some((p, n)) = try_records::<S>(o, v, true) {
        if n == 1 {
            return Ok(&mut *p);
        }
        release_view(v);
        arg_error(pin, fi, pi, o);
        return Err(());
    }
    let value = rec_value::<S>(pin, fi, pi, o)?;
    Ok(tmp.write(value))
}

/// Writes a copied `&mut S` back into its record (no-op when it was written in place).
pub unsafe fn rec_back<S: Struct>(
    pin: &mut Pin, fi: Ssize, pi: Ssize, o: Obj, v: &View, value: *const S,
) -> bool {
    if v.held {
        return true;
    }
    let k = pin.hold();
    if S::light().owns(o) {
        return (*value).write_light(o, k);
    }
    let b = PyBytes_FromStringAndSize(value as *const c_char, std::mem::size_of::<S>() as Ssize);
    if b.is_null() {
        return false;
    }
    let r = PyObject_CallMethod(k, c"_record_set".as_ptr(), c"nnON".as_ptr(), fi, pi, o, b);
    if r.is_null() {
        return false;
    }
    Py_DecRef(r);
    true
}

/// A fieldless enum argument: an int (or IntEnum member) that is one of its discriminants.
pub unsafe fn enum_arg<E: Enum>(pin: &mut Pin, fi: Ssize, pi: Ssize, o: Obj) -> Result<E, ()> {
    let raw: E::Repr = arg(pin, fi, pi, o)?;
    if !E::VALUES.contains(&raw) {
        arg_error(pin, fi, pi, o);
        return Err(());
    }
    Ok(std::mem::transmute_copy::<E::Repr, E>(&raw))
}


// ---------------------------------------------------------------- shared types as results
//
// Struct, enum, `Vec` and data-enum results are built through the keeper `k`, which the entry
// pinned before converting (`finish` passes it down through `Option` and tuples).

/// No keeper at hand: a shared type outside `finish` (never generated).
#[cold]
pub unsafe fn no_keeper() -> Obj {
    PyErr_SetString(PyExc_RuntimeError, c"symbiont: a shared type was converted without its keeper".as_ptr());
    null_mut()
}

/// A fieldless enum value as the IntEnum member of the enum called `name`.
pub unsafe fn enum_py<E: Enum>(k: Obj, v: E, name: &std::ffi::CStr) -> Obj {
    let raw = std::mem::transmute_copy::<E, E::Repr>(&v).into_py();
    if raw.is_null() {
        return null_mut();
    }
    PyObject_CallMethod(k, c"_enum".as_ptr(), c"sN".as_ptr(), name.as_ptr(), raw)
}

/// A variant of an enum with data: `fields` (new references, or null on a failed conversion)
/// become the frozen dataclass of variant `index` of the enum called `name`.
pub unsafe fn variant_py(k: Obj, name: &std::ffi::CStr, index: Ssize, fields: &[Obj]) -> Obj {
    let t = tuple(fields);
    if t.is_null() {
        return null_mut();
    }
    PyObject_CallMethod(k, c"_variant".as_ptr(), c"snN".as_ptr(), name.as_ptr(), index, t)
}

/// Element types of a `Vec` result: numeric and bool elements and structs become a numpy array,
/// other elements a list.
pub trait VecItem: Sized {
    unsafe fn vec_into_py(v: Vec<Self>, k: Obj) -> Obj;
}

impl<T: VecItem> Ret for Vec<T> {
    const CONTAINER: bool = true;
    unsafe fn into_py(self) -> Obj {
        no_keeper()
    }
    unsafe fn into_py_k(self, k: Obj) -> Obj {
        T::vec_into_py(self, k)
    }
}

// Up to this many bytes a result is copied into a bytearray that numpy views; above it the
// array views the Vec's own buffer, which a capsule frees. Copying is cheaper for small
// results (one allocation, no capsule), owning for large ones (no second pass over the
// memory): see benchmarks/shared_types.py.
const OWN_ABOVE: usize = 64 * 1024;
const VEC_CAPSULE: &std::ffi::CStr = c"symbiont.vec";

/// A numeric (or struct) `Vec` as a numpy array of `dtype` (a numpy dtype name or a struct's).
pub unsafe fn vec_array<T>(v: Vec<T>, k: Obj, dtype: &std::ffi::CStr) -> Obj {
    let bytes = v.len() * std::mem::size_of::<T>();
    if bytes <= OWN_ABOVE {
        let b = PyByteArray_FromStringAndSize(v.as_ptr() as *const c_char, bytes as Ssize);
        drop(v);
        if b.is_null() {
            return null_mut();
        }
        return PyObject_CallMethod(k, c"_vec".as_ptr(), c"sN".as_ptr(), dtype.as_ptr(), b);
    }
    let (n, addr) = (v.len(), v.as_ptr() as usize);
    let boxed = Box::into_raw(Box::new(v));
    let cap = PyCapsule_New(boxed as *mut c_void, VEC_CAPSULE.as_ptr(), drop_vec::<T>);
    if cap.is_null() {
        drop(Box::from_raw(boxed));
        return null_mut();
    }
    // The capsule's destructor runs this library's code: it keeps the keeper (and with it the
    // library) alive until it has run.
    Py_IncRef(k);
    PyCapsule_SetContext(cap, k as *mut c_void);
    PyObject_CallMethod(k, c"_vec_owned".as_ptr(), c"sNnn".as_ptr(), dtype.as_ptr(), cap, addr as Ssize, n as Ssize)
}

unsafe extern "C" fn drop_vec<T>(cap: Obj) {
    let p = PyCapsule_GetPointer(cap, VEC_CAPSULE.as_ptr()) as *mut Vec<T>;
    let k = PyCapsule_GetContext(cap) as Obj;
    if !p.is_null() {
        drop(Box::from_raw(p));
    }
    if !k.is_null() {
        Py_DecRef(k); // last: the library is unloaded by the reaper, never under this frame
    }
}

macro_rules! vec_numeric {
    ($($t:ty => $d:literal),*) => {$(
        impl VecItem for $t {
            unsafe fn vec_into_py(v: Vec<$t>, k: Obj) -> Obj { vec_array(v, k, $d) }
        }
    )*};
}
vec_numeric!(
    i8 => c"int8", i16 => c"int16", i32 => c"int32", i64 => c"int64", isize => c"int64",
    u8 => c"uint8", u16 => c"uint16", u32 => c"uint32", u64 => c"uint64", usize => c"uint64",
    f32 => c"float32", f64 => c"float64", bool => c"bool"
);

impl VecItem for char {
    unsafe fn vec_into_py(v: Vec<char>, _k: Obj) -> Obj {
        let list = PyList_New(v.len() as Ssize);
        if list.is_null() {
            return list;
        }
        for (i, c) in v.into_iter().enumerate() {
            let item = c.into_py();
            if item.is_null() {
                Py_DecRef(list);
                return null_mut();
            }
            PyList_SetItem(list, i as Ssize, item);
        }
        list
    }
}

// ---------------------------------------------------------------- Option arguments, rows

#[inline(always)]
pub unsafe fn is_none(o: Obj) -> bool {
    o == addr_of_mut!(_Py_NoneStruct)
}

/// `&[[T; N]]` / `&mut [[T; N]]`: a C-contiguous buffer of T with shape (n, N), zero copy.
unsafe fn acquire_rows<T: Elem, const N: usize>(
    pin: &mut Pin, fi: Ssize, pi: Ssize, o: Obj, v: &mut View, writable: bool,
) -> Result<(*mut [T; N], usize), ()> {
    pin.hold(); // the exporter may run Python code
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
    let p = v.view.buf as *mut [T; N];
    let row = std::mem::size_of::<[T; N]>();
    if !ok
        || v.view.ndim != 2
        || v.view.shape.is_null()
        || *v.view.shape.add(1) != N as Ssize
        || (p as usize) % std::mem::align_of::<T>() != 0
        || row == 0
    {
        arg_error(pin, fi, pi, o);
        return Err(());
    }
    let n = v.view.len as usize / row;
    if !T::valid(p as *const T, n * N) {
        arg_error(pin, fi, pi, o);
        return Err(());
    }
    let p = if n == 0 { std::ptr::NonNull::<[T; N]>::dangling().as_ptr() } else { p };
    Ok((p, n))
}

pub unsafe fn rows<'a, T: Elem, const N: usize>(
    pin: &mut Pin, fi: Ssize, pi: Ssize, o: Obj, v: &mut View,
) -> Result<&'a [[T; N]], ()> {
    let (p, n) = acquire_rows::<T, N>(pin, fi, pi, o, v, false)?;
    Ok(std::slice::from_raw_parts(p, n))
}

pub unsafe fn rows_mut<'a, T: Elem, const N: usize>(
    pin: &mut Pin, fi: Ssize, pi: Ssize, o: Obj, v: &mut View,
) -> Result<&'a mut [[T; N]], ()> {
    let (p, n) = acquire_rows::<T, N>(pin, fi, pi, o, v, true)?;
    Ok(std::slice::from_raw_parts_mut(p, n))
}

// ---------------------------------------------------------------- light records
//
// `rt.types.S` is a slotted dataclass: its instances hold one object pointer per field at
// `base + 8 * i` (Python verified that layout when it made the class, see
// _load/_records.py). Reading one is a type comparison and one exact-type conversion per
// field, with no Python code, so a by-value struct argument needs no pin; making one is an
// allocation and a conversion per field. Fields: numbers and bools as Python numbers, nested
// structs as their own records, fixed-size arrays as tuples.

/// A struct's record class and the offset of its first field slot (0: not handed over yet).
pub struct LightClass {
    cls: AtomicPtr<PyObject>,
    base: AtomicUsize,
}

impl LightClass {
    pub const fn new() -> LightClass {
        LightClass { cls: AtomicPtr::new(null_mut()), base: AtomicUsize::new(0) }
    }
    #[inline(always)]
    pub fn ready(&self) -> bool {
        self.base.load(Ordering::Relaxed) != 0
    }
    /// Whether `o` is exactly an instance of the class.
    #[inline(always)]
    pub unsafe fn owns(&self, o: Obj) -> bool {
        let cls = self.cls.load(Ordering::Relaxed);
        !cls.is_null() && (*o).ob_type == cls as *mut c_void
    }
    /// The field slots of `o`, when it is a record of this class.
    #[inline(always)]
    pub unsafe fn slots(&self, o: Obj) -> Option<*mut Obj> {
        if !self.owns(o) {
            return None;
        }
        Some((o as *mut u8).add(self.base.load(Ordering::Relaxed)) as *mut Obj)
    }
}

/// Asks the keeper for the record class of the struct `name` (pinned: it runs Python code).
/// The class is cached by Python for the life of the process, so keeping its address is safe.
#[inline(never)]
pub unsafe fn light_ready(lc: &LightClass, k: Obj, name: &std::ffi::CStr) -> bool {
    if lc.ready() {
        return true;
    }
    let r = PyObject_CallMethod(k, c"_record_class".as_ptr(), c"s".as_ptr(), name.as_ptr());
    if r.is_null() {
        return false;
    }
    let cls = PyTuple_GetItem(r, 0);
    let base = usize::fast(PyTuple_GetItem(r, 1)).unwrap_or(0);
    if cls.is_null() || base == 0 {
        Py_DecRef(r);
        PyErr_SetString(PyExc_RuntimeError, c"symbiont: bad record class".as_ptr());
        return false;
    }
    Py_IncRef(cls); // kept for good (Python caches the class anyway)
    Py_DecRef(r);
    lc.cls.store(cls, Ordering::Relaxed);
    lc.base.store(base, Ordering::Relaxed);
    true
}

/// Field `i` of a record's slots (None: unset or not of the exact type).
#[inline(always)]
pub unsafe fn slot<T: Field>(slots: *mut Obj, i: usize) -> Option<T> {
    let p = *slots.add(i);
    if p.is_null() { None } else { T::from_field(p) }
}

/// A new record of the class from field objects (new references, null on failure).
pub unsafe fn light_new(lc: &LightClass, items: &[Obj]) -> Obj {
    if items.iter().any(|o| o.is_null()) {
        release_all(items);
        return null_mut();
    }
    let r = PyType_GenericAlloc(lc.cls.load(Ordering::Relaxed), 0);
    if r.is_null() {
        release_all(items);
        return null_mut();
    }
    let slots = (r as *mut u8).add(lc.base.load(Ordering::Relaxed)) as *mut Obj;
    for (i, &o) in items.iter().enumerate() {
        *slots.add(i) = o;
    }
    r
}

/// Replaces the fields of record `o` (pinned: dropping an old value may run Python code).
pub unsafe fn light_set(lc: &LightClass, o: Obj, items: &[Obj]) -> bool {
    if items.iter().any(|o| o.is_null()) {
        release_all(items);
        return false;
    }
    let Some(slots) = lc.slots(o) else {
        release_all(items);
        return false;
    };
    for (i, &new) in items.iter().enumerate() {
        let old = std::ptr::replace(slots.add(i), new);
        if !old.is_null() {
            Py_DecRef(old);
        }
    }
    true
}

unsafe fn release_all(items: &[Obj]) {
    for &o in items {
        if !o.is_null() {
            Py_DecRef(o);
        }
    }
}

/// A value held in a record field.
pub trait Field: Sized {
    /// From a field's object, exact types only and without running Python code.
    unsafe fn from_field(o: Obj) -> Option<Self>;
    /// A new object for the field (a new reference, or null with an error set).
    unsafe fn to_field(&self, k: Obj) -> Obj;
}

macro_rules! scalar_field {
    ($($t:ty),*) => {$(
        impl Field for $t {
            #[inline(always)]
            unsafe fn from_field(o: Obj) -> Option<$t> { <$t as FromPy>::fast(o) }
            #[inline(always)]
            unsafe fn to_field(&self, _k: Obj) -> Obj { (*self).into_py() }
        }
    )*};
}
scalar_field!(i8, i16, i32, i64, isize, u8, u16, u32, u64, usize, f32, f64, bool);

impl<T: Field, const N: usize> Field for [T; N] {
    unsafe fn from_field(o: Obj) -> Option<[T; N]> {
        if !is_exact(o, addr_of_mut!(PyTuple_Type)) || PyTuple_Size(o) != N as Ssize {
            return None;
        }
        let mut out: [std::mem::MaybeUninit<T>; N] = std::mem::MaybeUninit::uninit().assume_init();
        for (i, slot) in out.iter_mut().enumerate() {
            slot.write(T::from_field(PyTuple_GetItem(o, i as Ssize))?);
        }
        Some(std::mem::transmute_copy::<[std::mem::MaybeUninit<T>; N], [T; N]>(&out))
    }
    unsafe fn to_field(&self, k: Obj) -> Obj {
        let t = PyTuple_New(N as Ssize);
        if t.is_null() {
            return t;
        }
        for (i, x) in self.iter().enumerate() {
            let item = x.to_field(k);
            if item.is_null() {
                Py_DecRef(t);
                return null_mut();
            }
            PyTuple_SetItem(t, i as Ssize, item);
        }
        t
    }
}

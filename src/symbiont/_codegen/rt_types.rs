
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
}

/// A `#[repr(C)]` struct whose layout the generated crate asserted against Python's.
///
/// # Safety
/// `FORMAT` must describe exactly `Self`'s layout and `BOOLS` every bool byte in it.
pub unsafe trait Struct: Sized {
    /// The NUL-terminated buffer format numpy exports for the matching structured dtype.
    const FORMAT: &'static [u8];
    /// Byte offsets of the bool fields: any other byte than 0 or 1 there is not a valid value.
    const BOOLS: &'static [usize];
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

unsafe fn release(v: &mut View) {
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
        release(v);
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
    let mut v = View::new();
    let (p, n) = records::<S>(pin, fi, pi, o, &mut v, false)?;
    if n != 1 {
        release(&mut v);
        arg_error(pin, fi, pi, o);
        return Err(());
    }
    let value = std::ptr::read(p);
    release(&mut v);
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
        release(v);
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

/// A struct result: its bytes become a numpy record through the keeper.
pub unsafe fn finish_record<S: Struct>(
    mut pin: Pin, fi: Ssize, r: std::thread::Result<S>, flagged: bool, timeout_ns: u64,
) -> Obj {
    match r {
        Ok(v) => {
            let k = pin.hold();
            let b = PyBytes_FromStringAndSize(
                &v as *const S as *const c_char,
                std::mem::size_of::<S>() as Ssize,
            );
            if b.is_null() {
                return null_mut();
            }
            PyObject_CallMethod(k, c"_record".as_ptr(), c"nN".as_ptr(), fi, b)
        }
        Err(payload) => failed(&mut pin, fi, payload, flagged, timeout_ns),
    }
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

/// An enum result: its discriminant becomes the IntEnum member through the keeper.
pub unsafe fn finish_enum<E: Enum>(
    mut pin: Pin, fi: Ssize, r: std::thread::Result<E>, flagged: bool, timeout_ns: u64,
) -> Obj {
    match r {
        Ok(v) => {
            let k = pin.hold();
            let raw = std::mem::transmute_copy::<E, E::Repr>(&v).into_py();
            if raw.is_null() {
                return null_mut();
            }
            PyObject_CallMethod(k, c"_enum".as_ptr(), c"nN".as_ptr(), fi, raw)
        }
        Err(payload) => failed(&mut pin, fi, payload, flagged, timeout_ns),
    }
}

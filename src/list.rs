//! The merged tree of an image without writing it to disk: the layers applied to the
//! in-memory model of [`crate::merge::spec`] (the same rules the applier is tested against).
//! `ls` reads headers only; tar output spools file contents to a temporary file.

use std::io::Write;

use crate::error::{Error, IoContext, Result};
use crate::image::Image;
use crate::layer::Decoded;
pub use crate::merge::spec::Listed;
use crate::merge::spec::Spec;

/// Applies every layer of `image` to `spec`, checking digests when `verify` is set.
fn build(image: &Image, mut spec: Spec, verify: bool) -> Result<Spec> {
    for (index, l) in image.layers.iter().enumerate() {
        let at = image.layer_ref(index);
        if !verify && !spec.keeps_content() && seek_through(image, index, &mut spec)? {
            continue;
        }
        let mut decoded =
            Decoded::new(image.open_layer(index)?, &l.expected).map_err(|e| e.in_layer(&at))?;
        spec.apply_layer_at(decoded.reader())
            .map_err(|(entry, msg)| Error::input(format!("entry {entry}: {msg}")).in_layer(&at))?;
        let measured = decoded.finish().map_err(|e| e.in_layer(&at))?;
        if verify {
            measured.verify(&l.expected).map_err(|e| e.in_layer(&at))?;
        }
    }
    Ok(spec)
}

/// Every path the flattened image would have, in `tar -t` order, with the layer that wrote
/// it. Built the way the applier builds the tree (headers read top-down, the plan), without
/// writing anything; file data is seeked past in plain layers unless digests are checked.
pub fn list(image: &Image, verify: bool) -> Result<Vec<Listed>> {
    let settings = crate::apply::Settings {
        verify,
        ..Default::default()
    };
    let read = crate::apply::read_layers(image, &settings, &mut (), None)?;
    let plan = crate::apply::plan(image, &read.records, &read.upper)?;
    Ok(plan.list())
}

/// Writes the flattened image to `out` as one tar stream (see [`crate::sink::tar`]). Needs
/// no privileges: owners and devices go into the headers. File contents are spooled to an
/// unlinked temporary file in `$TMPDIR` while the layers are read. With `docker_export`, the
/// result is what `docker export` of a new container made from the image gives: what
/// `docker create` adds, whole-second mtimes, only `security.capability` among xattrs.
pub fn write_tar(
    image: &Image,
    verify: bool,
    docker_export: bool,
    out: &mut dyn Write,
) -> Result<()> {
    let spool =
        tempfile::tempfile().ctx(|| "cannot create a temporary file (set TMPDIR)".into())?;
    let mut spec = build(image, Spec::spooling(spool), verify)?;
    if docker_export {
        let workdir = image
            .config
            .config
            .as_ref()
            .and_then(|c| c.working_dir.as_deref());
        spec.add_docker_init(workdir)
            .map_err(|e| Error::input(format!("cannot add what docker create adds: {e}")))?;
    }
    crate::sink::tar::write(&spec, docker_export, out).ctx(|| "cannot write the tar output".into())
}

/// Headers only, seeking over file data, when nothing needs the bytes (no digest to check,
/// no content kept) and the layer is an uncompressed tar. Returns whether it did.
fn seek_through(image: &Image, index: usize, spec: &mut Spec) -> Result<bool> {
    use std::io::{Read, Seek};
    let at = image.layer_ref(index);
    let mut blob = image.open_layer_seekable(index)?;
    let mut head = [0u8; 6];
    let n = blob
        .read(&mut head)
        .map_err(|e| Error::io("cannot read layer", e).in_layer(&at))?;
    if crate::layer::sniff(&head[..n]).map_err(|e| e.in_layer(&at))?
        != crate::layer::Compression::None
    {
        return Ok(false);
    }
    blob.rewind()
        .map_err(|e| Error::io("cannot read layer", e).in_layer(&at))?;
    spec.apply_layer_seekable(blob)
        .map_err(|(entry, msg)| Error::input(format!("entry {entry}: {msg}")).in_layer(&at))?;
    Ok(true)
}

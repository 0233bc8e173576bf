//! The merged tree of an image without writing it: the layers applied to the in-memory model
//! of [`crate::merge::spec`] (the same rules the applier is tested against), headers only.

use crate::error::{Error, Result};
use crate::image::Image;
use crate::layer::Decoded;
pub use crate::merge::spec::Listed;
use crate::merge::spec::Spec;

/// Every path the flattened image would have, in `tar -t` order, with the layer that wrote
/// it. With `verify`, each layer's digests are checked as it is read.
pub fn list(image: &Image, verify: bool) -> Result<Vec<Listed>> {
    let mut spec = Spec::headers_only();
    for (index, l) in image.layers.iter().enumerate() {
        let at = image.layer_ref(index);
        let mut decoded =
            Decoded::new(image.open_layer(index)?, &l.expected).map_err(|e| e.in_layer(&at))?;
        spec.apply_layer_at(decoded.reader())
            .map_err(|(entry, msg)| Error::input(format!("entry {entry}: {msg}")).in_layer(&at))?;
        let measured = decoded.finish().map_err(|e| e.in_layer(&at))?;
        if verify {
            measured.verify(&l.expected).map_err(|e| e.in_layer(&at))?;
        }
    }
    Ok(spec.list())
}

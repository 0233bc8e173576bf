//! The listing output (`ls`): every path of the merged tree, read as for a directory but
//! written nowhere.

use crate::error::Result;
use crate::image::Image;
pub use crate::merge::Listed;
use crate::read::{self, Settings};
use crate::Options;

/// Every path the flattened image would have, in `tar -t` order, with the layer that wrote
/// it. Built the way the applier builds the tree (headers read top-down, the plan), without
/// writing anything; file data is seeked past in plain layers unless digests are checked.
/// `options.verify` and `options.cancel` apply.
///
/// ```
/// use flatten::{list, Image, Input, Options};
/// # let path = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/example/hello.tar");
/// let options = Options::default();
/// let (input, _) = Input::parse(path)?;
/// let image = Image::open(&input, &options.selector, options.verify)?;
/// for entry in list(&image, &options)? {
///     println!("{} (layer {})", String::from_utf8_lossy(&entry.path), entry.layer);
/// }
/// # Ok::<(), flatten::Error>(())
/// ```
pub fn list(image: &Image, options: &Options) -> Result<Vec<Listed>> {
    let settings = Settings {
        verify: options.verify,
        cancel: options.cancel.clone(),
        docker_export: None,
    };
    let read = read::read_layers(image, &settings, &mut (), ())?;
    let plan = read::plan(image, &read.records, &read.upper)?;
    Ok(plan.list())
}

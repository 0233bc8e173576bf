//! The directory output: the merged tree written once, each file from the one layer entry
//! whose content survives. Reading (step 1) wrote the surviving files where their names put
//! them; then:
//!
//! 3. **Reconcile.** What step 1 wrote is checked against the plan: files at their final path
//!    stay; a file needed elsewhere (the path guess of step 1 was wrong, as when a lower layer
//!    turns a directory into a symlink) waits in a staging directory; anything else is removed.
//!    A surviving file whose content step 1 skipped (a hardlink kept it alive) is read again
//!    from its layer into staging. For real images these lists are empty.
//! 4. **Write the rest**, depth first from the plan: directories, symlinks, devices, fifos,
//!    hardlinks and staged files, each directory's mode and times after its contents.
//!
//! Modules: `write` (steps 3 and 4); everything on disk goes through [`crate::fs`].

mod write;

use std::path::Path;

use crate::error::Result;
use crate::fs::Target;
pub use crate::layer::{InMemory, Layers};
use crate::read::{plan, read_layers, Gathered, Keep};
pub use crate::read::{Outcome, Settings};
use crate::Observer;
use write::Writer;

/// Applies `layers` into `dir`, an existing empty directory. On error the directory holds
/// whatever was written up to then.
pub fn apply(
    layers: &dyn Layers,
    dir: &Path,
    settings: &Settings,
    observer: &mut dyn Observer,
) -> Result<Outcome> {
    let target = Target::open(dir, settings.strategy, settings.cancel.clone())?;
    let Gathered {
        keep,
        upper,
        mut disk,
        records,
        mut out,
    } = read_layers(layers, settings, observer, Keep::Target(target))?;
    let Keep::Target(mut target) = keep else {
        unreachable!("given a target")
    };
    let mut plan = plan(layers, &records, &upper)?;
    if let Some(workdir) = &settings.docker_export {
        plan.add_docker_init(workdir.as_deref())?;
    }
    let mut w = Writer::new(&mut target, &plan, &upper, &mut disk)?;
    out.moved = w.reconcile()?;
    out.reread = w.fetch_missing(layers, settings.verify)?;
    w.write_tree()?;
    out.unreproduced = target.finish();
    Ok(out)
}

//! `--squash`: the target stage's own layers become one, the difference between its
//! final tree and its base's (both read-only views), deletions as whiteouts. The image
//! record keeps the original top snapshot: the same tree under its unsquashed chain ID.

use super::state::StageState;
use super::{BuildError, Builder};
use crate::cache::chain_id;
use crate::layer::{self, LayerOptions};

impl Builder<'_> {
    /// Squashes the layers of `st` above its base into one.
    pub(crate) fn squash(&self, st: &mut StageState) -> Result<(), BuildError> {
        let base = st.base_layers;
        if st.layers.len() <= base + 1 {
            return Ok(());
        }
        let n = self.next_step();
        let t = std::time::Instant::now();
        self.progress.begin(
            n,
            &format!("squash {} layers into one", st.layers.len() - base),
        );
        let mut base_state = st.clone();
        base_state.chain = st.diff_ids[..base]
            .iter()
            .fold(None, |c: Option<String>, d| Some(chain_id(c.as_deref(), d)));
        let top = self.view(st)?;
        let bottom = self.view(&base_state)?;
        let (uid_map, gid_map) = self.id_maps();
        let lo = LayerOptions {
            compression: self.opts.compression,
            source_date_epoch: self.opts.source_date_epoch,
            xattr_prefix: "trusted.".into(),
            parent: Some(bottom.rootfs.clone()),
            uid_map,
            gid_map,
            copy_owner: None,
            owners: Default::default(),
        };
        let dir = self
            .engine
            .paths()
            .runroot
            .join("build")
            .join(format!("{}-squash", self.build_id));
        std::fs::create_dir_all(&dir).map_err(BuildError::io("create", &dir))?;
        let file = layer::TempLayer(dir.join("layer"));
        let res = layer::write(&top.rootfs, &file.0, &lo)
            .map_err(BuildError::io("write the squashed layer of", &top.rootfs))
            .and_then(|w| {
                self.import(&file.0, &w.digest, w.size)?;
                Ok(w)
            });
        drop(top);
        drop(bottom);
        let _ = std::fs::remove_dir_all(&dir);
        let w = res?;
        let desc = oci_spec::image::DescriptorBuilder::default()
            .media_type(oci_spec::image::MediaType::from(
                self.opts.compression.media_type(),
            ))
            .digest(w.digest.clone())
            .size(w.size)
            .build()
            .expect("descriptor fields set");
        st.layers.truncate(base);
        st.layers.push(desc);
        st.diff_ids.truncate(base);
        st.diff_ids.push(w.diff_id.to_string());
        // the squashed steps stay in the history, as empty layers, then the one layer
        let base_hist = st
            .history
            .iter()
            .scan(0usize, |layers, h| {
                let before = *layers;
                if h.empty_layer() != Some(true) {
                    *layers += 1;
                }
                Some(before)
            })
            .take_while(|before| *before < base)
            .count();
        for h in st.history.iter_mut().skip(base_hist) {
            h.set_empty_layer(Some(true));
        }
        st.push_history("liana build --squash", false, self.opts.source_date_epoch);
        self.progress.done(n, t.elapsed(), false);
        Ok(())
    }
}

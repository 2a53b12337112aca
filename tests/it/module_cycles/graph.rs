//! The module dependency graph of Rust crates at file granularity, as a reviewer reads imports:
//! starting from each crate root it follows `mod name;` declarations to the files (`name.rs` or
//! `name/mod.rs`, inline `mod name { … }` blocks belong to their file), then records an edge from a
//! file to the file of every module it names by a path that starts with `crate::`, `super::`,
//! `self::` or another crate of the set (`amiscan::` from the binary), in a `use` tree or in code.
//! A parent's `mod child;` is not an edge; a child's `super::x` is. A path is followed down the
//! module tree as far as its segments name modules (`crate::detect::Finding` is an edge to
//! `detect/mod.rs`). Unit tests count like the code around them.
//! Limits: a path that starts with a bare name is not followed: a name brought in by another
//! `use`, or a child module (`use inode::Inode` or `walk::run()` in a parent: a parent that uses
//! its child and is used back by it through `super::` is not reported); `#[path]` is not read.

use super::lex::{Tok, tokenize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

/// A crate to read: its root file and the name other crates of the set use for it.
pub struct CrateRoot {
    /// `src/lib.rs`, `src/main.rs`, …
    pub root: PathBuf,
    /// The name paths in other crates start with (`amiscan`), if any crate names it.
    pub name: Option<String>,
    /// Crate names (of this set) the crate's files may refer to.
    pub uses: Vec<String>,
}

/// One module: where it lives, its parent and its child modules.
struct Module {
    file: usize,
    parent: Option<usize>,
    /// The directory its `mod child;` files are in.
    dir: PathBuf,
    children: BTreeMap<String, usize>,
}

/// A path found in a file, to resolve once every module is known.
struct Reference {
    from: usize,
    crate_idx: usize,
    segments: Vec<String>,
}

/// The files of the crates and the import edges between them.
#[derive(Default)]
pub struct Graph {
    /// Every file reached, as given (relative to the tree root).
    pub files: Vec<PathBuf>,
    /// `from → to` file indices, never `x → x`.
    pub edges: BTreeSet<(usize, usize)>,
    /// Declared modules whose file is missing (`mod x;` with neither `x.rs` nor `x/mod.rs`).
    pub missing: Vec<String>,
}

/// Read the crates' files through `read` (path → source, `None` when the file does not exist).
pub fn build(crates: &[CrateRoot], read: &dyn Fn(&Path) -> Option<String>) -> Graph {
    let mut b = Builder {
        graph: Graph::default(),
        modules: Vec::new(),
        refs: Vec::new(),
        roots: Vec::new(),
    };
    for (ci, c) in crates.iter().enumerate() {
        let dir = c.root.parent().unwrap_or(Path::new("")).to_path_buf();
        match read(&c.root) {
            Some(src) => {
                let root = b.load_file(ci, c.root.clone(), dir, None, &src, read);
                b.roots.push(root);
            }
            None => {
                b.graph.missing.push(c.root.display().to_string());
                b.roots.push(usize::MAX);
            }
        }
    }
    let names: BTreeMap<&str, usize> = crates
        .iter()
        .enumerate()
        .filter_map(|(i, c)| c.name.as_deref().map(|n| (n, i)))
        .collect();
    for r in &b.refs {
        let allowed = &crates[r.crate_idx].uses;
        if let Some(to) = b.resolve(r, &names, allowed) {
            let from = b.modules[r.from].file;
            let to = b.modules[to].file;
            if from != to {
                b.graph.edges.insert((from, to));
            }
        }
    }
    b.graph
}

struct Builder {
    graph: Graph,
    modules: Vec<Module>,
    refs: Vec<Reference>,
    roots: Vec<usize>,
}

impl Builder {
    fn new_module(&mut self, file: usize, parent: Option<usize>, dir: PathBuf) -> usize {
        self.modules.push(Module {
            file,
            parent,
            dir,
            children: BTreeMap::new(),
        });
        self.modules.len() - 1
    }

    /// Read one file as module (new, child of `parent`) and everything it declares.
    fn load_file(
        &mut self,
        crate_idx: usize,
        path: PathBuf,
        dir: PathBuf,
        parent: Option<usize>,
        src: &str,
        read: &dyn Fn(&Path) -> Option<String>,
    ) -> usize {
        self.graph.files.push(path);
        let file = self.graph.files.len() - 1;
        let module = self.new_module(file, parent, dir);
        let toks = tokenize(src);
        // (module, brace depth at which its block closes) for inline modules; the file at depth 0.
        let mut stack: Vec<(usize, usize)> = vec![(module, 0)];
        let mut depth = 0usize;
        let mut i = 0;
        while i < toks.len() {
            let current = stack.last().map_or(module, |s| s.0);
            match &toks[i] {
                Tok::Punct('{') => depth += 1,
                Tok::Punct('}') => {
                    if stack.len() > 1 && stack.last().is_some_and(|s| s.1 == depth) {
                        stack.pop();
                    }
                    depth = depth.saturating_sub(1);
                }
                Tok::Ident(kw) if kw == "mod" => {
                    if let (Some(Tok::Ident(name)), Some(next)) = (toks.get(i + 1), toks.get(i + 2))
                    {
                        let name = name.clone();
                        let child_dir = self.modules[current].dir.join(&name);
                        if *next == Tok::Punct(';') {
                            let candidates = [
                                self.modules[current].dir.join(format!("{name}.rs")),
                                child_dir.join("mod.rs"),
                            ];
                            let found = candidates
                                .iter()
                                .find_map(|p| read(p).map(|s| (p.clone(), s)));
                            match found {
                                Some((p, s)) => {
                                    let child = self.load_file(
                                        crate_idx,
                                        p,
                                        child_dir,
                                        Some(current),
                                        &s,
                                        read,
                                    );
                                    self.modules[current].children.insert(name, child);
                                }
                                None => {
                                    self.graph.missing.push(candidates[0].display().to_string())
                                }
                            }
                            i += 3;
                            continue;
                        }
                        if *next == Tok::Punct('{') {
                            let child = self.new_module(file, Some(current), child_dir);
                            self.modules[current].children.insert(name, child);
                            depth += 1;
                            stack.push((child, depth));
                            i += 3;
                            continue;
                        }
                    }
                }
                Tok::Ident(kw) if kw == "use" && toks.get(i + 1) != Some(&Tok::Punct('<')) => {
                    let end = toks[i..]
                        .iter()
                        .position(|t| *t == Tok::Punct(';'))
                        .map_or(toks.len(), |p| i + p);
                    let mut paths = Vec::new();
                    use_tree(&toks[i + 1..end], &[], &mut paths);
                    for segments in paths {
                        self.refs.push(Reference {
                            from: current,
                            crate_idx,
                            segments,
                        });
                    }
                    i = end + 1;
                    continue;
                }
                Tok::Ident(first)
                    if toks.get(i + 1) == Some(&Tok::PathSep)
                        && (i == 0 || toks[i - 1] != Tok::PathSep) =>
                {
                    // A path in code: keep its leading segments; `resolve` decides whether it names modules.
                    let mut segments = vec![first.clone()];
                    let mut j = i + 1;
                    while toks.get(j) == Some(&Tok::PathSep) {
                        match toks.get(j + 1) {
                            Some(Tok::Ident(s)) => segments.push(s.clone()),
                            _ => break,
                        }
                        j += 2;
                    }
                    self.refs.push(Reference {
                        from: current,
                        crate_idx,
                        segments: mark_code(segments),
                    });
                    i = j;
                    continue;
                }
                _ => {}
            }
            i += 1;
        }
        module
    }

    /// The module a path names (as deep as its segments name modules), if it names one of ours.
    fn resolve(
        &self,
        r: &Reference,
        names: &BTreeMap<&str, usize>,
        allowed: &[String],
    ) -> Option<usize> {
        let segments = match r.segments.first().map(String::as_str) {
            Some(CODE) => &r.segments[1..],
            _ => &r.segments[..],
        };
        let first = segments.first()?;
        let mut m = match first.as_str() {
            "crate" => self.crate_root_of(r.from)?,
            "self" => r.from,
            "super" => self.modules[r.from].parent?,
            name => {
                let ci = names
                    .get(name)
                    .filter(|_| allowed.iter().any(|a| a == name))?;
                self.roots.get(*ci).copied().filter(|&x| x != usize::MAX)?
            }
        };
        for s in &segments[1..] {
            if s == "super" {
                m = self.modules[m].parent?;
                continue;
            }
            match self.modules[m].children.get(s) {
                Some(&c) => m = c,
                None => break,
            }
        }
        Some(m)
    }

    fn crate_root_of(&self, mut m: usize) -> Option<usize> {
        while let Some(p) = self.modules[m].parent {
            m = p;
        }
        Some(m)
    }
}

/// The marker put before a path found in code (not in a `use`); such a path counts when it starts
/// like one in a `use` does.
const CODE: &str = "\0code";

fn mark_code(mut segments: Vec<String>) -> Vec<String> {
    segments.insert(0, CODE.to_string());
    segments
}

/// Every leaf path of the use tree `toks` (after `use`, before `;`), each prefixed by `prefix`.
fn use_tree(toks: &[Tok], prefix: &[String], out: &mut Vec<Vec<String>>) {
    let toks = match toks.first() {
        Some(Tok::PathSep) => &toks[1..], // `use ::std::…`
        _ => toks,
    };
    let mut path = prefix.to_vec();
    let mut i = 0;
    while i < toks.len() {
        match &toks[i] {
            Tok::Ident(s) if s == "as" => break,
            Tok::Ident(s) if s == "self" && !path.is_empty() => {}
            Tok::Ident(s) => path.push(s.clone()),
            Tok::PathSep => {}
            Tok::Punct('*') => break,
            Tok::Punct('{') => {
                let close = matching_brace(toks, i);
                for item in split_top_level(&toks[i + 1..close]) {
                    use_tree(item, &path, out);
                }
                return;
            }
            _ => break,
        }
        i += 1;
    }
    if !path.is_empty() {
        out.push(path);
    }
}

fn matching_brace(toks: &[Tok], open: usize) -> usize {
    let mut depth = 0usize;
    for (k, t) in toks.iter().enumerate().skip(open) {
        match t {
            Tok::Punct('{') => depth += 1,
            Tok::Punct('}') => {
                depth -= 1;
                if depth == 0 {
                    return k;
                }
            }
            _ => {}
        }
    }
    toks.len()
}

fn split_top_level(toks: &[Tok]) -> Vec<&[Tok]> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (k, t) in toks.iter().enumerate() {
        match t {
            Tok::Punct('{') => depth += 1,
            Tok::Punct('}') => depth = depth.saturating_sub(1),
            Tok::Punct(',') if depth == 0 => {
                parts.push(&toks[start..k]);
                start = k + 1;
            }
            _ => {}
        }
    }
    parts.push(&toks[start..]);
    parts.into_iter().filter(|p| !p.is_empty()).collect()
}

/// The strongly connected components of more than one file, each as one shortest cycle through
/// its first file (`a → b → a`) and the files of the whole component, sorted for a stable message.
pub fn cycles(g: &Graph) -> Vec<(Vec<usize>, Vec<usize>)> {
    let n = g.files.len();
    let mut adj = vec![Vec::new(); n];
    for &(a, b) in &g.edges {
        adj[a].push(b);
    }
    let comps = tarjan(&adj);
    let mut out = Vec::new();
    for mut comp in comps.into_iter().filter(|c| c.len() > 1) {
        comp.sort_by(|&a, &b| g.files[a].cmp(&g.files[b]));
        let set: BTreeSet<usize> = comp.iter().copied().collect();
        let start = comp[0];
        // Shortest way back to `start` inside the component.
        let mut prev = vec![usize::MAX; n];
        let mut queue = VecDeque::from([start]);
        let mut end = None;
        'bfs: while let Some(x) = queue.pop_front() {
            for &y in &adj[x] {
                if !set.contains(&y) {
                    continue;
                }
                if y == start {
                    end = Some(x);
                    break 'bfs;
                }
                if prev[y] == usize::MAX {
                    prev[y] = x;
                    queue.push_back(y);
                }
            }
        }
        let mut cycle = vec![start];
        let mut x = end.unwrap_or(start);
        let mut back = Vec::new();
        while x != start {
            back.push(x);
            x = prev[x];
        }
        back.reverse();
        cycle.extend(back);
        cycle.push(start);
        out.push((cycle, comp));
    }
    out.sort_by(|a, b| g.files[a.0[0]].cmp(&g.files[b.0[0]]));
    out
}

/// Tarjan's algorithm, iterative (no recursion depth limit on a large tree).
fn tarjan(adj: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let n = adj.len();
    let (mut index, mut low, mut on) = (vec![usize::MAX; n], vec![0; n], vec![false; n]);
    let (mut stack, mut comps, mut next) = (Vec::new(), Vec::new(), 0usize);
    for s in 0..n {
        if index[s] != usize::MAX {
            continue;
        }
        let mut call: Vec<(usize, usize)> = vec![(s, 0)];
        while let Some(&(v, k)) = call.last() {
            if k == 0 && index[v] == usize::MAX {
                index[v] = next;
                low[v] = next;
                next += 1;
                stack.push(v);
                on[v] = true;
            }
            if let Some(&w) = adj[v].get(k) {
                if let Some(top) = call.last_mut() {
                    top.1 += 1;
                }
                if index[w] == usize::MAX {
                    call.push((w, 0));
                } else if on[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            call.pop();
            if let Some(&(u, _)) = call.last() {
                low[u] = low[u].min(low[v]);
            }
            if low[v] == index[v] {
                let mut comp = Vec::new();
                while let Some(w) = stack.pop() {
                    on[w] = false;
                    comp.push(w);
                    if w == v {
                        break;
                    }
                }
                comps.push(comp);
            }
        }
    }
    comps
}

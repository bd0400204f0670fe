//! Pictures of task graphs (Dask's `visualize`): Graphviz DOT text, and an
//! SVG drawn here (no Graphviz needed) for graphs of up to [`MAX_SVG_TASKS`]
//! tasks. Tasks are boxes named by their op (and chunk index), coloured by
//! op; arrows go from inputs to the tasks that use them, inputs at the
//! bottom, as Dask draws them.

use crate::graph::{Graph, Key};
use std::collections::HashMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// The largest graph drawn as SVG; bigger ones only get DOT (Graphviz lays
/// them out), as a picture of thousands of boxes helps nobody.
pub const MAX_SVG_TASKS: usize = 2_000;

/// Why a picture could not be made or saved.
#[derive(Debug, thiserror::Error)]
pub enum VisualizeError {
    /// Too many tasks to draw.
    #[error("the graph has {tasks} tasks; SVG pictures are drawn for up to {MAX_SVG_TASKS} (write the DOT text and lay it out with Graphviz instead)")]
    TooBig {
        /// How many.
        tasks: usize,
    },
    /// The file name says neither `.dot`/`.gv` nor `.svg`.
    #[error("{}: say .svg or .dot in the file name", path.display())]
    UnknownFormat {
        /// The path given.
        path: PathBuf,
    },
    /// Writing failed.
    #[error("writing {}: {error}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// What went wrong.
        error: std::io::Error,
    },
}

/// A picture of a graph.
#[derive(Clone, Debug)]
pub struct Visualization {
    graph: Graph,
}

impl Visualization {
    /// A picture of `graph`.
    pub fn new(graph: Graph) -> Self {
        Visualization { graph }
    }

    /// The graph as Graphviz DOT.
    pub fn dot(&self) -> String {
        to_dot(&self.graph)
    }

    /// The graph as an SVG document.
    pub fn svg(&self) -> Result<String, VisualizeError> {
        to_svg(&self.graph)
    }

    /// Writes the picture to `path`: SVG for `.svg`, DOT for `.dot` or `.gv`
    /// (Dask's `visualize(filename=...)`).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), VisualizeError> {
        let path = path.as_ref();
        let text = match path.extension().and_then(|e| e.to_str()) {
            Some("svg") => self.svg()?,
            Some("dot") | Some("gv") => self.dot(),
            _ => {
                return Err(VisualizeError::UnknownFormat {
                    path: path.to_path_buf(),
                })
            }
        };
        std::fs::write(path, text).map_err(|error| VisualizeError::Io {
            path: path.to_path_buf(),
            error,
        })
    }
}

/// A task's short name: its op, and its chunk index when it has one
/// (`sum-3fa2[0,1]` → `sum[0,1]`).
fn label(key: &Key) -> String {
    let text = key.as_str();
    match text.find('[') {
        Some(open) => format!("{}{}", key.prefix(), &text[open..]),
        None => key.prefix().to_string(),
    }
}

fn colour(op: &str) -> String {
    let hue = op
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)))
        % 360;
    format!("hsl({hue}, 62%, 80%)")
}

fn dot_quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The graph as Graphviz DOT: one box per task, labelled by op and index,
/// with the full key as its tooltip.
pub fn to_dot(graph: &Graph) -> String {
    let mut out = String::from("digraph {\n  graph [rankdir=BT]\n  node [shape=box, style=\"rounded,filled\", fontname=\"sans-serif\"]\n");
    let ids: HashMap<&Key, usize> = graph
        .tasks()
        .iter()
        .enumerate()
        .map(|(i, t)| (&t.key, i))
        .collect();
    for (i, task) in graph.tasks().iter().enumerate() {
        let _ = writeln!(
            out,
            "  t{i} [label={}, tooltip={}, fillcolor={}]",
            dot_quote(&label(&task.key)),
            dot_quote(task.key.as_str()),
            dot_quote(&colour(task.key.prefix()))
        );
    }
    for (i, task) in graph.tasks().iter().enumerate() {
        for dep in &task.deps {
            if let Some(d) = ids.get(dep) {
                let _ = writeln!(out, "  t{d} -> t{i}");
            }
        }
    }
    out.push_str("}\n");
    out
}

/// The graph as SVG, laid out in layers by the longest path from its
/// inputs, each layer ordered by where its inputs sit.
pub fn to_svg(graph: &Graph) -> Result<String, VisualizeError> {
    let tasks = graph.tasks();
    if tasks.len() > MAX_SVG_TASKS {
        return Err(VisualizeError::TooBig { tasks: tasks.len() });
    }
    let ids: HashMap<&Key, usize> = tasks.iter().enumerate().map(|(i, t)| (&t.key, i)).collect();
    let inputs: Vec<Vec<usize>> = tasks
        .iter()
        .map(|t| t.deps.iter().filter_map(|d| ids.get(d).copied()).collect())
        .collect();
    let layer_of = layers(&inputs);
    let depth = layer_of.iter().copied().max().map_or(0, |d| d + 1);
    let mut rows: Vec<Vec<usize>> = vec![Vec::new(); depth];
    for (t, &layer) in layer_of.iter().enumerate() {
        rows[layer].push(t);
    }
    // Order each layer by the mean position of its inputs in the layers below.
    let mut position = vec![0.0f64; tasks.len()];
    for row in rows.iter_mut() {
        let key = |t: &usize| -> f64 {
            let ins = &inputs[*t];
            if ins.is_empty() {
                *t as f64
            } else {
                ins.iter().map(|&i| position[i]).sum::<f64>() / ins.len() as f64
            }
        };
        row.sort_by(|a, b| key(a).total_cmp(&key(b)));
        for (k, &t) in row.iter().enumerate() {
            position[t] = k as f64;
        }
    }
    const W: f64 = 120.0;
    const H: f64 = 28.0;
    const GAP_X: f64 = 16.0;
    const GAP_Y: f64 = 44.0;
    let widest = rows.iter().map(Vec::len).max().unwrap_or(0) as f64;
    let width = (widest * (W + GAP_X) + GAP_X).max(W + 2.0 * GAP_X);
    let height = depth as f64 * (H + GAP_Y) + GAP_Y / 2.0;
    let mut centre = vec![(0.0, 0.0); tasks.len()];
    for (layer, row) in rows.iter().enumerate() {
        let offset = (width - row.len() as f64 * (W + GAP_X) + GAP_X) / 2.0;
        for (k, &t) in row.iter().enumerate() {
            let x = offset + k as f64 * (W + GAP_X) + W / 2.0;
            // Inputs at the bottom.
            let y = height - GAP_Y / 2.0 - layer as f64 * (H + GAP_Y) - H / 2.0;
            centre[t] = (x, y);
        }
    }
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" viewBox=\"0 0 {width:.0} {height:.0}\" font-family=\"sans-serif\" font-size=\"11\">\n\
         <defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"6\" markerHeight=\"6\" orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#6b7385\"/></marker></defs>\n"
    );
    for (t, ins) in inputs.iter().enumerate() {
        let (x2, y2) = centre[t];
        for &i in ins {
            let (x1, y1) = centre[i];
            let (y1, y2) = (y1 - H / 2.0, y2 + H / 2.0);
            let mid = (y1 + y2) / 2.0;
            let _ = writeln!(
                svg,
                "<path d=\"M{x1:.1},{y1:.1} C{x1:.1},{mid:.1} {x2:.1},{mid:.1} {x2:.1},{y2:.1}\" fill=\"none\" stroke=\"#6b7385\" marker-end=\"url(#arrow)\"/>"
            );
        }
    }
    for (t, task) in tasks.iter().enumerate() {
        let (x, y) = centre[t];
        let mut name = label(&task.key);
        if name.chars().count() > 18 {
            name = name.chars().take(17).collect::<String>() + "…";
        }
        let _ = writeln!(
            svg,
            "<g class=\"task\"><title>{}</title><rect x=\"{:.1}\" y=\"{:.1}\" width=\"{W}\" height=\"{H}\" rx=\"6\" fill=\"{}\" stroke=\"#4b5563\"/><text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text></g>",
            super::assets::escape(task.key.as_str()),
            x - W / 2.0,
            y - H / 2.0,
            colour(task.key.prefix()),
            y + 4.0,
            super::assets::escape(&name)
        );
    }
    svg.push_str("</svg>\n");
    Ok(svg)
}

/// Each task's layer: one more than its deepest input's (inputs of inputs
/// first, without recursion, so deep chains cannot overflow the stack).
fn layers(inputs: &[Vec<usize>]) -> Vec<usize> {
    const UNSET: usize = usize::MAX;
    let mut layer = vec![UNSET; inputs.len()];
    // Depth first, each frame a task and its next input to look at; a task
    // on the stack is not entered again (a cycle cannot loop).
    let mut on_stack = vec![false; inputs.len()];
    let mut stack: Vec<(usize, usize)> = Vec::new();
    for start in 0..inputs.len() {
        if layer[start] != UNSET {
            continue;
        }
        stack.push((start, 0));
        on_stack[start] = true;
        while let Some((t, next)) = stack.last_mut() {
            let t = *t;
            if let Some(&i) = inputs[t].get(*next) {
                *next += 1;
                if layer[i] == UNSET && !on_stack[i] {
                    on_stack[i] = true;
                    stack.push((i, 0));
                }
                continue;
            }
            layer[t] = inputs[t]
                .iter()
                .map(|&i| if layer[i] == UNSET { 0 } else { layer[i] + 1 })
                .max()
                .unwrap_or(0);
            on_stack[t] = false;
            stack.pop();
        }
    }
    layer
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::TaskSpec;

    crate::op! { fn vis_leaf() -> u64 { 1 } }

    fn graph(edges: &[(&str, &[&str])]) -> Graph {
        let mut g = Graph::new();
        for (key, deps) in edges {
            g.insert(TaskSpec::new(
                Key::new(*key),
                crate::ops::Op::op_ref(&vis_leaf),
                vec![],
                deps.iter().map(|d| Key::new(*d)).collect(),
            ));
        }
        g
    }

    #[test]
    fn dot_has_a_node_per_task_and_an_edge_per_input() {
        let g = graph(&[
            ("x-1[0]", &[]),
            ("x-1[1]", &[]),
            ("sum-2", &["x-1[0]", "x-1[1]"]),
        ]);
        let dot = to_dot(&g);
        assert_eq!(dot.matches("label=").count(), 3);
        assert!(dot.contains("label=\"x[1]\""));
        assert!(dot.contains("t0 -> t2") && dot.contains("t1 -> t2"));
    }

    #[test]
    fn svg_puts_inputs_below_the_tasks_that_use_them() {
        let g = graph(&[("a-1", &[]), ("b-1", &["a-1"]), ("c-1", &["b-1", "a-1"])]);
        let svg = to_svg(&g).unwrap();
        assert_eq!(svg.matches("<g class=\"task\">").count(), 3);
        assert_eq!(svg.matches("marker-end").count(), 3);
        let y_of = |name: &str| -> f64 {
            let at = svg
                .find(&format!("<title>{name}</title><rect x=\""))
                .unwrap();
            let rest = &svg[at..];
            let y = rest.split("y=\"").nth(1).unwrap();
            y[..y.find('"').unwrap()].parse().unwrap()
        };
        assert!(y_of("a-1") > y_of("b-1") && y_of("b-1") > y_of("c-1"));
    }

    #[test]
    fn layers_follow_the_longest_path_whatever_the_order() {
        // 0 takes 1 and 2; 2 takes 1: 1 is the input of both, 2 sits between.
        assert_eq!(layers(&[vec![1, 2], vec![], vec![1]]), vec![2, 0, 1]);
    }

    #[test]
    fn a_deep_chain_is_laid_out_without_recursion_and_big_graphs_refuse_svg() {
        let inputs: Vec<Vec<usize>> = (0..100_000)
            .map(|i| if i == 0 { vec![] } else { vec![i - 1] })
            .collect();
        let layer = layers(&inputs);
        assert_eq!(layer[99_999], 99_999);
        let keys: Vec<String> = (0..=MAX_SVG_TASKS).map(|i| format!("t-{i}")).collect();
        let edges: Vec<(&str, &[&str])> = keys.iter().map(|k| (k.as_str(), &[][..])).collect();
        assert!(matches!(
            to_svg(&graph(&edges)),
            Err(VisualizeError::TooBig { .. })
        ));
    }

    #[test]
    fn an_arrays_picture_shows_its_chunks_feeding_its_reduction() {
        let total = crate::collections::array::arange(0i64, 100, 1, 25)
            .unwrap()
            .sum()
            .unwrap();
        let picture = total.visualize();
        let svg = picture.svg().unwrap();
        let chunks = svg.matches(">arange[").count();
        assert_eq!(chunks, 4, "{svg}");
        assert!(picture.dot().contains("digraph"));
        let dir = std::env::temp_dir().join(format!("rask-visualize-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        picture.save(dir.join("sum.svg")).unwrap();
        assert!(std::fs::read_to_string(dir.join("sum.svg"))
            .unwrap()
            .starts_with("<svg"));
        assert!(matches!(
            picture.save(dir.join("sum.png")),
            Err(VisualizeError::UnknownFormat { .. })
        ));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn keys_cannot_break_out_of_the_markup() {
        let g = graph(&[("</title><script>x</script>", &[]), ("q\"uote", &[])]);
        let svg = to_svg(&g).unwrap();
        assert!(!svg.contains("<script>"));
        assert!(to_dot(&g).contains("\\\"uote"));
    }
}

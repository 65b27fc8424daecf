//! Proto comments from `source_code_info`, looked up by a descriptor's file and path.
//!
//! protoc-style compilers record every element's comments in the file's `SourceCodeInfo`, keyed by
//! the element's path (field numbers and indexes from the `FileDescriptorProto` root); prost-reflect
//! exposes the same path for every descriptor, so one index per file serves every lookup.

use std::collections::HashMap;

use prost_reflect::{
    DescriptorPool, EnumDescriptor, EnumValueDescriptor, FieldDescriptor, FileDescriptor, MessageDescriptor,
    MethodDescriptor, ServiceDescriptor,
};

/// Leading comments of every commented element in a descriptor pool.
pub(crate) struct Comments {
    /// File name → element path → cleaned leading comment.
    by_file: HashMap<String, HashMap<Vec<i32>, String>>,
}

impl Comments {
    /// Indexes the leading comments of every file in `pool`.
    pub(crate) fn new(pool: &DescriptorPool) -> Self {
        let mut by_file = HashMap::new();
        for file in pool.files() {
            let Some(info) = &file.file_descriptor_proto().source_code_info else { continue };
            let mut paths = HashMap::new();
            for location in &info.location {
                let Some(raw) = &location.leading_comments else { continue };
                let text = clean(raw);
                if !text.is_empty() {
                    paths.insert(location.path.clone(), text);
                }
            }
            by_file.insert(file.name().to_owned(), paths);
        }
        Self { by_file }
    }

    fn lookup(&self, file: &FileDescriptor, path: &[i32]) -> Option<&str> {
        self.by_file.get(file.name())?.get(path).map(String::as_str)
    }

    pub(crate) fn message(&self, d: &MessageDescriptor) -> Option<&str> {
        self.lookup(&d.parent_file(), d.path())
    }

    pub(crate) fn field(&self, d: &FieldDescriptor) -> Option<&str> {
        self.lookup(&d.parent_file(), d.path())
    }

    pub(crate) fn enumeration(&self, d: &EnumDescriptor) -> Option<&str> {
        self.lookup(&d.parent_file(), d.path())
    }

    pub(crate) fn enum_value(&self, d: &EnumValueDescriptor) -> Option<&str> {
        self.lookup(&d.parent_file(), d.path())
    }

    pub(crate) fn service(&self, d: &ServiceDescriptor) -> Option<&str> {
        self.lookup(&d.parent_file(), d.path())
    }

    pub(crate) fn method(&self, d: &MethodDescriptor) -> Option<&str> {
        self.lookup(&d.parent_file(), d.path())
    }
}

/// Removes the single space protoc keeps after `//` on every line, trailing blanks, and leading or
/// trailing empty lines; keeps paragraph breaks (they are Markdown paragraphs in OpenAPI).
pub(crate) fn clean(raw: &str) -> String {
    let lines: Vec<&str> = raw.lines().map(|line| line.strip_prefix(' ').unwrap_or(line).trim_end()).collect();
    let start = lines.iter().position(|l| !l.is_empty()).unwrap_or(lines.len());
    let end = lines.iter().rposition(|l| !l.is_empty()).map_or(start, |i| i + 1);
    lines[start..end].join("\n")
}

/// The summary of a comment: its first sentence (the first paragraph, unwrapped, up to the first
/// `. `), so a sentence wrapped over two source lines is not cut in the middle.
pub(crate) fn summary(comment: &str) -> String {
    let paragraph = comment.split("\n\n").next().unwrap_or(comment);
    let unwrapped = paragraph.lines().map(str::trim).collect::<Vec<_>>().join(" ");
    let end = unwrapped
        .match_indices(". ")
        .map(|(i, _)| i)
        .find(|&i| !(unwrapped[..i].ends_with("e.g") || unwrapped[..i].ends_with("i.e")));
    match end {
        Some(end) => unwrapped[..=end].to_owned(),
        None => unwrapped,
    }
}

/// A comment as one line (for bullet lists of enum values).
pub(crate) fn one_line(comment: &str) -> String {
    comment.split_whitespace().collect::<Vec<_>>().join(" ")
}

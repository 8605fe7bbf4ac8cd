//! What the Blender add-on computes from the open scene for a job type's `eval` settings,
//! computed for `castanet submit` when not given with `--set`, as the dashboard's Submit page
//! does (web/src/forms/addonEval.ts): the render output path from the output root, the .blend
//! file's folders and the job name; the image file extension from the format; Blender's
//! defaults (24 fps, PNG, scene "Scene", no previews) for what only the scene knows.
use serde_json::{Map, Value, json};

/// Blender's `image_settings.file_format` → the `render.file_extension` it writes.
fn extension_of(format: &str) -> Option<&'static str> {
    Some(match format.trim().to_ascii_uppercase().as_str() {
        "BMP" => ".bmp",
        "IRIS" => ".rgb",
        "PNG" => ".png",
        "JPEG" => ".jpg",
        "JPEG2000" => ".jp2",
        "TARGA" | "TARGA_RAW" => ".tga",
        "CINEON" => ".cin",
        "DPX" => ".dpx",
        "OPEN_EXR" | "OPEN_EXR_MULTILAYER" | "EXR" | "MULTILAYER" => ".exr",
        "HDR" => ".hdr",
        "TIFF" => ".tif",
        "WEBP" => ".webp",
        _ => return None,
    })
}

/// Blender's default for a setting only the scene knows.
fn scene_default(expression: &str) -> Option<Value> {
    if expression.contains("render.fps") {
        Some(json!(24.0))
    } else if expression.contains("image_settings.file_format") {
        Some(json!("PNG"))
    } else if expression.contains("use_preview") {
        Some(json!(false))
    } else if expression.contains("scene.name") {
        Some(json!("Scene"))
    } else {
        None
    }
}

/// The last `count` folder names of a file's path (the add-on's `last_n_dir_parts`).
fn last_dir_parts(file: &str, count: usize) -> Vec<&str> {
    let mut folders: Vec<&str> = file.split(['/', '\\']).filter(|p| !p.is_empty()).collect();
    folders.pop();
    // A Windows drive ("C:") is not a folder name.
    if folders
        .first()
        .is_some_and(|p| p.len() == 2 && p.ends_with(':'))
    {
        folders.remove(0);
    }
    let skip = folders.len().saturating_sub(count);
    folders.split_off(skip)
}

/// `<root>/<last N folders of the .blend>/<job name>/` and the expression's quoted parts
/// (`{timestamp}`, `######`).
fn output_path(expression: &str, settings: &Map<String, Value>, job_name: &str) -> Option<String> {
    let root = settings.get("render_output_root")?.as_str()?.trim();
    if root.is_empty() {
        return None;
    }
    let separator = if root.contains('\\') && !root.contains('/') {
        "\\"
    } else {
        "/"
    };
    let count = settings
        .get("add_path_components")
        .and_then(Value::as_u64)
        .unwrap_or(0) as usize;
    let blendfile = settings
        .get("blendfile")
        .and_then(Value::as_str)
        .unwrap_or_default();
    // A job name with a separator would make folders of its own.
    let name = job_name.trim().replace(['/', '\\'], "-");
    let mut parts = vec![root.trim_end_matches(['/', '\\']).to_string()];
    parts.extend(
        last_dir_parts(blendfile, count)
            .into_iter()
            .map(String::from),
    );
    parts.push(if name.is_empty() { "job".into() } else { name });
    parts.extend(
        expression
            .split('\'')
            .skip(1)
            .step_by(2)
            .filter(|p| !p.is_empty())
            .map(String::from),
    );
    Some(parts.join(separator))
}

/// Fills the `eval` settings of `job_type` that `settings` lacks and can be computed without
/// the scene; returns `key=value` for each, to tell the user.
pub fn fill_computed(
    job_type: &Value,
    job_name: &str,
    settings: &mut Map<String, Value>,
) -> Vec<String> {
    let specs: Vec<(&str, &str)> = job_type
        .get("settings")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|spec| Some((spec.get("key")?.as_str()?, spec.get("eval")?.as_str()?)))
        .collect();
    let mut filled = Vec::new();
    let mut fill = |settings: &mut Map<String, Value>, key: &str, value: Value| {
        filled.push(format!(
            "{key}={}",
            value.as_str().map_or(value.to_string(), String::from)
        ));
        settings.insert(key.to_string(), value);
    };
    // Defaults first: the extension follows the format, the path the other settings.
    for &(key, expression) in &specs {
        if !settings.contains_key(key)
            && let Some(value) = scene_default(expression)
        {
            fill(settings, key, value);
        }
    }
    for &(key, expression) in &specs {
        if settings.contains_key(key) {
            continue;
        }
        if expression.contains("render.file_extension") {
            let format = settings.get("format").and_then(Value::as_str).unwrap_or("");
            if let Some(extension) = extension_of(format) {
                fill(settings, key, json!(extension));
            }
        } else if expression.contains("last_n_dir_parts")
            && let Some(path) = output_path(expression, settings, job_name)
        {
            fill(settings, key, json!(path));
        }
    }
    filled
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "str(Path(abspath(settings.render_output_root), last_n_dir_parts(settings.add_path_components), jobname, '{timestamp}', '######'))";

    fn render_type() -> Value {
        json!({ "settings": [
            { "key": "frames", "type": "string", "eval": "f'{C.scene.frame_start}'" },
            { "key": "render_output_root", "type": "string" },
            { "key": "add_path_components", "type": "int32", "default": 0 },
            { "key": "render_output_path", "type": "string", "eval": OUTPUT },
            { "key": "blendfile", "type": "string", "eval": "bpy.data.filepath" },
            { "key": "fps", "type": "float", "eval": "C.scene.render.fps / C.scene.render.fps_base" },
            { "key": "format", "type": "string", "eval": "C.scene.render.image_settings.file_format" },
            { "key": "image_file_extension", "type": "string", "eval": "C.scene.render.file_extension" },
            { "key": "has_previews", "type": "bool", "eval": "C.scene.render.image_settings.use_preview" },
            { "key": "scene", "type": "string", "eval": "C.scene.name" },
        ]})
    }

    #[test]
    fn what_the_add_on_computes_is_filled_in_and_given_values_win() {
        let mut settings = json!({
            "frames": "1-3", "render_output_root": "/renders/", "add_path_components": 1,
            "blendfile": "/projects/film/scene.blend", "format": "OPEN_EXR",
        });
        let Value::Object(settings) = &mut settings else {
            unreachable!()
        };
        let filled = fill_computed(&render_type(), "shot 10", settings);
        assert_eq!(
            Value::Object(settings.clone()),
            json!({
                "frames": "1-3", "render_output_root": "/renders/", "add_path_components": 1,
                "blendfile": "/projects/film/scene.blend", "format": "OPEN_EXR",
                "render_output_path": "/renders/film/shot 10/{timestamp}/######",
                "fps": 24.0, "image_file_extension": ".exr", "has_previews": false,
                "scene": "Scene",
            })
        );
        assert!(
            filled.contains(&"image_file_extension=.exr".to_string()),
            "{filled:?}"
        );
        assert!(
            !filled.iter().any(|f| f.starts_with("format=")),
            "given: {filled:?}"
        );
    }

    #[test]
    fn nothing_is_made_up_without_what_it_is_computed_from() {
        let mut settings = Map::new();
        settings.insert("format".into(), json!("GIF"));
        fill_computed(&render_type(), "x", &mut settings);
        assert!(!settings.contains_key("render_output_path"));
        assert!(!settings.contains_key("image_file_extension"));
        assert!(!settings.contains_key("frames") && !settings.contains_key("blendfile"));
        assert_eq!(last_dir_parts(r"C:\p\film\x.blend", 5), ["p", "film"]);
    }
}

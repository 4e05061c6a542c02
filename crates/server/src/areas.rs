//! Areas of interest (docs/analytics.md): incidents counted per district,
//! beat or community area (GeoJSON polygons) and around schools or parks
//! (GeoJSON points with a buffer), split by the school calendar into school
//! hours, after school, and other times.
//!
//! An incident on an area's boundary counts in that area (and so in both of
//! two areas that share the boundary); one within a point's buffer is at most
//! `buffer_m` away on the WGS84 sphere (haversine, mean Earth radius).

use std::collections::HashSet;

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Weekday};
use geo::{BoundingRect, Distance, Haversine, Intersects, MultiPolygon, Point, Rect};
use serde::Serialize;

use crate::config::{AreaLayerConfig, SchoolHoursConfig};

/// Largest area file read, bytes.
const MAX_LAYER_BYTES: u64 = 64 << 20;

/// One area: a layer's feature.
#[derive(Debug, Clone)]
pub struct Area {
    pub layer: String,
    pub name: String,
    pub shape: Shape,
    /// The GeoJSON geometry as read, for maps.
    pub geometry: serde_json::Value,
}

#[derive(Debug, Clone)]
pub enum Shape {
    Polygons {
        polygons: MultiPolygon<f64>,
        bounds: Rect<f64>,
    },
    Circle {
        centre: Point<f64>,
        radius_m: f64,
    },
}

impl Area {
    /// Whether the place is in the area (a boundary counts as in).
    pub fn contains(&self, lat: f64, lon: f64) -> bool {
        let p = Point::new(lon, lat);
        match &self.shape {
            Shape::Polygons { polygons, bounds } => {
                bounds.intersects(&p) && polygons.intersects(&p)
            }
            Shape::Circle { centre, radius_m } => Haversine.distance(*centre, p) <= *radius_m,
        }
    }

    /// The buffer radius for a point area.
    pub fn buffer_m(&self) -> Option<f64> {
        match self.shape {
            Shape::Circle { radius_m, .. } => Some(radius_m),
            Shape::Polygons { .. } => None,
        }
    }
}

/// Reads every configured layer. An area file that cannot be read, is not
/// GeoJSON, or holds a geometry that is neither a polygon nor a point is an
/// error naming the file and the feature.
pub fn load(layers: &[AreaLayerConfig]) -> Result<Vec<Area>, String> {
    let mut areas = Vec::new();
    let mut names = HashSet::new();
    for layer in layers {
        if !names.insert(layer.name.as_str()) {
            return Err(format!("areas: layer {:?} is listed twice", layer.name));
        }
        areas.extend(load_layer(layer)?);
    }
    Ok(areas)
}

fn load_layer(layer: &AreaLayerConfig) -> Result<Vec<Area>, String> {
    let shown = layer.file.display();
    let meta = std::fs::metadata(&layer.file).map_err(|e| format!("areas {shown}: {e}"))?;
    if meta.len() > MAX_LAYER_BYTES {
        return Err(format!(
            "areas {shown}: {} bytes, more than {MAX_LAYER_BYTES}",
            meta.len()
        ));
    }
    let text = std::fs::read_to_string(&layer.file).map_err(|e| format!("areas {shown}: {e}"))?;
    parse_layer(layer, &text).map_err(|e| format!("areas {shown}: {e}"))
}

/// The areas of one layer's GeoJSON text.
pub fn parse_layer(layer: &AreaLayerConfig, text: &str) -> Result<Vec<Area>, String> {
    let gj: geojson::GeoJson = text
        .parse()
        .map_err(|e: geojson::Error| format!("not GeoJSON: {e}"))?;
    let features = match gj {
        geojson::GeoJson::FeatureCollection(fc) => fc.features,
        geojson::GeoJson::Feature(f) => vec![f],
        geojson::GeoJson::Geometry(g) => vec![geojson::Feature {
            geometry: Some(g),
            ..geojson::Feature::default()
        }],
    };
    let mut out = Vec::with_capacity(features.len());
    for (i, f) in features.into_iter().enumerate() {
        let name = feature_name(&f, layer.name_property.as_deref())
            .unwrap_or_else(|| format!("{} #{}", layer.name, i + 1));
        let Some(geometry) = f.geometry else {
            return Err(format!("feature {} ({name}): no geometry", i + 1));
        };
        let json = serde_json::to_value(&geometry).map_err(|e| e.to_string())?;
        let g: geo::Geometry<f64> = geometry
            .try_into()
            .map_err(|e: geojson::Error| format!("feature {} ({name}): {e}", i + 1))?;
        let shape = match g {
            geo::Geometry::Point(centre) => Some(Shape::Circle {
                centre,
                radius_m: layer.buffer_m,
            }),
            geo::Geometry::Polygon(p) => polygons(MultiPolygon(vec![p])),
            geo::Geometry::MultiPolygon(mp) => polygons(mp),
            _ => None.ok_or_else(|| {
                format!(
                    "feature {} ({name}): a polygon, multipolygon or point is needed",
                    i + 1
                )
            })?,
        }
        .ok_or_else(|| format!("feature {} ({name}): an empty polygon", i + 1))?;
        out.push(Area {
            layer: layer.name.clone(),
            name,
            shape,
            geometry: json,
        });
    }
    Ok(out)
}

fn polygons(polygons: MultiPolygon<f64>) -> Option<Shape> {
    let bounds = polygons.bounding_rect()?;
    Some(Shape::Polygons { polygons, bounds })
}

fn feature_name(f: &geojson::Feature, property: Option<&str>) -> Option<String> {
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    let from_props = |key: &str| f.property(key).and_then(text);
    match property {
        Some(p) => from_props(p),
        None => ["name", "NAME", "Name"].into_iter().find_map(from_props),
    }
    .or_else(|| {
        f.id.as_ref().map(|id| match id {
            geojson::feature::Id::String(s) => s.clone(),
            geojson::feature::Id::Number(n) => n.to_string(),
        })
    })
}

/// When an instant falls on the school calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SchoolTime {
    /// A school day, between the start and the end of the school day.
    School,
    /// A school day, between the end and `after_end`.
    AfterSchool,
    /// Any other time: nights, weekends, holidays, between terms.
    Other,
}

/// The school calendar, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct SchoolCalendar {
    days: Vec<Weekday>,
    start: NaiveTime,
    end: NaiveTime,
    after_end: NaiveTime,
    terms: Vec<(NaiveDate, NaiveDate)>,
    closed: HashSet<NaiveDate>,
}

impl SchoolCalendar {
    pub fn new(c: &SchoolHoursConfig) -> Result<SchoolCalendar, String> {
        let time = |name: &str, v: &str| {
            NaiveTime::parse_from_str(v, "%H:%M")
                .map_err(|_| format!("areas.school_hours.{name} {v:?}: a time, HH:MM"))
        };
        let date = |v: &str| {
            NaiveDate::parse_from_str(v, "%Y-%m-%d")
                .map_err(|_| format!("areas.school_hours: {v:?} is not a date, YYYY-MM-DD"))
        };
        let days = c
            .days
            .iter()
            .map(|d| {
                d.parse::<Weekday>()
                    .map_err(|_| format!("areas.school_hours.days: {d:?} is not a weekday"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let (start, end, after_end) = (
            time("start", &c.start)?,
            time("end", &c.end)?,
            time("after_end", &c.after_end)?,
        );
        if !(start < end && end <= after_end) {
            return Err("areas.school_hours: start < end ≤ after_end is needed".into());
        }
        let mut terms = Vec::new();
        for [a, b] in &c.terms {
            let (a, b) = (date(a)?, date(b)?);
            if a > b {
                return Err(format!(
                    "areas.school_hours: the term {a} to {b} ends before it starts"
                ));
            }
            terms.push((a, b));
        }
        let closed = c.closed.iter().map(|d| date(d)).collect::<Result<_, _>>()?;
        Ok(SchoolCalendar {
            days,
            start,
            end,
            after_end,
            terms,
            closed,
        })
    }

    /// Where a local date and time falls.
    pub fn at(&self, local: NaiveDateTime) -> SchoolTime {
        let (date, time) = (local.date(), local.time());
        let school_day = self.days.contains(&date.weekday())
            && (self.terms.is_empty() || self.terms.iter().any(|&(a, b)| a <= date && date <= b))
            && !self.closed.contains(&date);
        if !school_day {
            SchoolTime::Other
        } else if self.start <= time && time < self.end {
            SchoolTime::School
        } else if self.end <= time && time < self.after_end {
            SchoolTime::AfterSchool
        } else {
            SchoolTime::Other
        }
    }
}

/// An area's counts.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct AreaCount {
    pub count: usize,
    /// With a school calendar: incidents in school hours, after school, and
    /// at other times (they add up to `count`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub school: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after_school: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_times: Option<usize>,
}

/// Counts incidents (first shot's time in ns, lat, lon) per area, each
/// area's counts in the order of `areas`; times are read in `tz`.
pub fn count(
    areas: &[Area],
    incidents: &[(i64, f64, f64)],
    calendar: Option<&SchoolCalendar>,
    tz: chrono_tz::Tz,
) -> Vec<AreaCount> {
    let when: Vec<Option<SchoolTime>> = incidents
        .iter()
        .map(|&(t, _, _)| calendar.map(|c| c.at(tz.timestamp_nanos(t).naive_local())))
        .collect();
    areas
        .iter()
        .map(|area| {
            let mut c = AreaCount {
                school: calendar.map(|_| 0),
                after_school: calendar.map(|_| 0),
                other_times: calendar.map(|_| 0),
                ..AreaCount::default()
            };
            for (&(_, lat, lon), when) in incidents.iter().zip(&when) {
                if !area.contains(lat, lon) {
                    continue;
                }
                c.count += 1;
                let slot = match when {
                    Some(SchoolTime::School) => &mut c.school,
                    Some(SchoolTime::AfterSchool) => &mut c.after_school,
                    Some(SchoolTime::Other) => &mut c.other_times,
                    None => continue,
                };
                if let Some(n) = slot {
                    *n += 1;
                }
            }
            c
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calendar() -> SchoolCalendar {
        SchoolCalendar::new(&SchoolHoursConfig {
            days: ["mon", "tue", "wed", "thu", "fri"]
                .map(String::from)
                .to_vec(),
            start: "08:00".into(),
            end: "15:00".into(),
            after_end: "19:00".into(),
            terms: vec![["2026-09-01".into(), "2026-12-18".into()]],
            closed: vec!["2026-11-26".into()],
        })
        .unwrap()
    }

    fn local(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
    }

    #[test]
    fn the_calendar_knows_school_days_hours_terms_and_holidays() {
        let c = calendar();
        // Tuesday 2026-11-24.
        assert_eq!(c.at(local("2026-11-24 07:59")), SchoolTime::Other);
        assert_eq!(c.at(local("2026-11-24 08:00")), SchoolTime::School);
        assert_eq!(c.at(local("2026-11-24 14:59")), SchoolTime::School);
        assert_eq!(c.at(local("2026-11-24 15:00")), SchoolTime::AfterSchool);
        assert_eq!(c.at(local("2026-11-24 18:59")), SchoolTime::AfterSchool);
        assert_eq!(c.at(local("2026-11-24 19:00")), SchoolTime::Other);
        // Thanksgiving (closed), a Saturday, and the summer break.
        assert_eq!(c.at(local("2026-11-26 10:00")), SchoolTime::Other);
        assert_eq!(c.at(local("2026-11-28 10:00")), SchoolTime::Other);
        assert_eq!(c.at(local("2026-07-14 10:00")), SchoolTime::Other);
    }

    #[test]
    fn a_bad_calendar_is_refused_with_its_field() {
        let mut h = SchoolHoursConfig {
            days: vec!["mon".into()],
            start: "15:00".into(),
            end: "08:00".into(),
            after_end: "19:00".into(),
            terms: vec![],
            closed: vec![],
        };
        assert!(SchoolCalendar::new(&h).unwrap_err().contains("start < end"));
        h.start = "8am".into();
        assert!(SchoolCalendar::new(&h).unwrap_err().contains("start"));
        h.start = "07:00".into();
        h.days = vec!["someday".into()];
        assert!(SchoolCalendar::new(&h).unwrap_err().contains("someday"));
    }

    #[test]
    fn a_layer_with_a_line_is_refused_by_feature() {
        let layer = AreaLayerConfig {
            name: "streets".into(),
            file: "x".into(),
            name_property: None,
            buffer_m: 300.0,
        };
        let text = r#"{"type":"FeatureCollection","features":[
            {"type":"Feature","properties":{"name":"Main St"},
             "geometry":{"type":"LineString","coordinates":[[0,0],[1,1]]}}]}"#;
        let e = parse_layer(&layer, text).unwrap_err();
        assert!(e.contains("feature 1 (Main St)"), "{e}");
        assert!(parse_layer(&layer, "{")
            .unwrap_err()
            .contains("not GeoJSON"));
    }
}

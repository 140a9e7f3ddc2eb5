#include "mongodb/mongo_query.hpp"

#include <string>

#include <eventsourced/error.hpp>

namespace eventsourced::mongodb_detail {
namespace {

json literal(const json& value) {
  return {{"$literal", value}};
}

json type_of(const json& x) {
  return {{"$type", x}};
}

json is_kind(const json& x, const char* kind) {
  return {{"$eq", json::array({type_of(x), kind})}};
}

json equals(const json& x, const json& operand) {
  if (operand.is_null()) {
    return {{"$in", json::array({type_of(x), json::array({"missing", "null"})})}};
  }
  json eq = {{"$eq", json::array({x, literal(operand)})}};
  if (operand.is_number()) {
    // $eq compares numbers of any BSON kind numerically, and never a number with anything else:
    // the guard only makes the intent explicit.
    return {{"$and", json::array({{{"$isNumber", x}}, std::move(eq)})}};
  }
  return eq;
}

json compare(const char* op, const json& x, const json& operand) {
  json guard = operand.is_number() ? json{{"$isNumber", x}} : is_kind(x, "string");
  return {{"$and", json::array({std::move(guard), {{op, json::array({x, literal(operand)})}}})}};
}

json any_equal(const json& x, const json& operands) {
  json alternatives = json::array();
  for (const json& v : operands) alternatives.push_back(equals(x, v));
  if (alternatives.empty()) return literal(false);
  return {{"$or", std::move(alternatives)}};
}

json negate(json e) {
  return {{"$not", json::array({std::move(e)})}};
}

}  // namespace

json field_expression(const field_path& path) {
  json x = "$body";
  const auto& segments = path.segments();
  for (std::size_t i = 0; i < segments.size(); ++i) {
    if (path.is_index(i)) {
      const auto index = static_cast<std::int64_t>(std::stoull(segments[i]));
      x = {{"$cond",
            json::array(
                {{{"$isArray", x}}, {{"$arrayElemAt", json::array({x, index})}}, "$$REMOVE"})}};
    } else {
      x = {{"$cond", json::array({is_kind(x, "object"),
                                  {{"$getField", {{"field", literal(segments[i])}, {"input", x}}}},
                                  "$$REMOVE"})}};
    }
  }
  return x;
}

json filter_expression(const filter_node& node) {
  if (node.op == filter_op::all_of || node.op == filter_op::any_of) {
    json children = json::array();
    for (const filter_node& child : node.children) children.push_back(filter_expression(child));
    return {{node.op == filter_op::all_of ? "$and" : "$or", std::move(children)}};
  }
  const json x = field_expression(*node.path);
  switch (node.op) {
    case filter_op::eq:
      return equals(x, node.operand);
    case filter_op::ne:
      return negate(equals(x, node.operand));
    case filter_op::gt:
      return compare("$gt", x, node.operand);
    case filter_op::gte:
      return compare("$gte", x, node.operand);
    case filter_op::lt:
      return compare("$lt", x, node.operand);
    case filter_op::lte:
      return compare("$lte", x, node.operand);
    case filter_op::in:
      return any_equal(x, node.operand);
    case filter_op::nin:
      return negate(any_equal(x, node.operand));
    case filter_op::exists: {
      json present = {{"$ne", json::array({type_of(x), "missing"})}};
      return node.operand.get<bool>() ? present : negate(std::move(present));
    }
    case filter_op::all_of:
    case filter_op::any_of:
      break;
  }
  throw invalid_argument_error("MongoDB: unsupported filter operator");
}

json find_pipeline(const query& q) {
  json pipeline = json::array();
  pipeline.push_back({{"$match", {{"body", {{"$type", "object"}}}}}});
  if (const auto& root = q.where.root()) {
    pipeline.push_back({{"$match", {{"$expr", filter_expression(*root)}}}});
  }
  json sort = json::object();
  if (q.sort.size() > 999) throw invalid_argument_error("MongoDB: more than 999 sort keys");
  if (!q.sort.empty()) {
    json keys = json::object();
    for (std::size_t i = 0; i < q.sort.size(); ++i) {
      const field_path path = field_path::parse(q.sort[i].path);
      const json x = field_expression(path);
      // Named so that their byte order is the sort order (nlohmann::json sorts object keys, and
      // $sort takes its keys in document order): _es_k000r, _es_k000v, _es_k001r, ..., then _id.
      std::string number = std::to_string(i);
      number.insert(0, 3 - number.size(), '0');
      const std::string rank = "_es_k" + number + "r";
      const std::string value = "_es_k" + number + "v";
      keys[rank] = {
          {"$switch",
           {{"branches",
             json::array(
                 {{{"case", {{"$in", json::array({type_of(x), json::array({"missing", "null"})})}}},
                   {"then", 0}},
                  {{"case", {{"$isNumber", x}}}, {"then", 1}},
                  {{"case", is_kind(x, "string")}, {"then", 2}},
                  {{"case", is_kind(x, "object")}, {"then", 3}},
                  {{"case", {{"$isArray", x}}}, {"then", 4}},
                  {{"case", is_kind(x, "bool")}, {"then", 5}}})},
            {"default", 6}}}};
      keys[value] = {{"$cond", json::array({{{"$isArray", x}}, {{"a", x}}, x})}};
      const int direction = q.sort[i].order == sort_order::ascending ? 1 : -1;
      sort[rank] = direction;
      sort[value] = direction;
    }
    pipeline.push_back({{"$addFields", std::move(keys)}});
  }
  sort["_id"] = 1;
  pipeline.push_back({{"$sort", std::move(sort)}});
  if (q.skip > 0) pipeline.push_back({{"$skip", q.skip}});
  if (q.limit) pipeline.push_back({{"$limit", *q.limit}});
  return pipeline;
}

}  // namespace eventsourced::mongodb_detail

// eventsourced: event-sourced document storage. The whole public API of eventsourced::core.
#pragma once

#include <eventsourced/engine/engine.hpp>
#include <eventsourced/engine/memory.hpp>
#include <eventsourced/engine/open.hpp>
#include <eventsourced/engine/query.hpp>
#include <eventsourced/engine/sqlite.hpp>
#include <eventsourced/error.hpp>
#include <eventsourced/event/bus.hpp>
#include <eventsourced/event/event.hpp>
#include <eventsourced/event/memory_bus.hpp>
#include <eventsourced/event/serializer.hpp>
#include <eventsourced/event/type_registry.hpp>
#include <eventsourced/storage/cache.hpp>
#include <eventsourced/storage/collection.hpp>
#include <eventsourced/storage/diff.hpp>
#include <eventsourced/storage/document_collection.hpp>
#include <eventsourced/storage/edit.hpp>
#include <eventsourced/storage/retry.hpp>
#include <eventsourced/storage/store.hpp>
#include <eventsourced/storage/transaction.hpp>
#include <eventsourced/storage/update_operators.hpp>

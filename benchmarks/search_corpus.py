"""A synthetic message corpus for the search benchmark: words in several forms, filled by SQL.

Each message is in one language (three in seven Russian), 3 to 80 words drawn from that
language's vocabulary with a skewed distribution (the first words of a list are far more
common than the last), so some searches hit most of a user's messages and some hit none.
"""

from __future__ import annotations


def _words(text: str) -> list[str]:
    return text.split()


ENGLISH = _words(
    """
    the model answer question answers questions answered answering please help helps
    helped code codes coding function functions bug bugs error errors fix fixed fixing
    test tests tested testing data database databases query queries table tables index
    indexes server servers request requests response responses user users account
    accounts balance token tokens price prices cost costs payment payments invoice
    invoices report reports chart charts travel travels trip trips flight flights hotel
    hotels ticket tickets city cities river rivers mountain mountains forest forests
    garden gardens flower flowers tree trees recipe recipes cook cooking cooked dinner
    dinners breakfast lunch soup soups bread cake cakes apple apples orange oranges
    coffee tea music song songs guitar piano concert movie movies book books novel
    novels story stories poem poems write writing wrote translate translation
    translations language languages english russian grammar word words letter letters
    email emails meeting meetings schedule calendar project projects deadline plan plans
    planning team teams manager managers zebra zebras giraffe giraffes elephant
    elephants lion lions tiger tigers penguin penguins dolphin dolphins whale whales
    """
)

RUSSIAN = _words(
    """
    и в не на что как это вопрос вопросы вопроса ответ ответы ответа помощь помоги
    помогите код кода коде функция функции функцию ошибка ошибки ошибку исправить
    исправил тест тесты данные данных база базы запрос запросы запроса таблица таблицы
    таблицу сервер сервера пользователь пользователи пользователя счёт баланс токен
    токены цена цены стоимость оплата оплаты отчёт отчёты отчета график графики
    путешествие путешествия поездка поездки самолёт гостиница гостиницы билет билеты
    город города городе река реки реке гора горы лес леса лесу сад сады цветок цветы
    дерево деревья рецепт рецепты готовить готовлю ужин завтрак обед суп супа хлеб торт
    торта яблоко яблоки апельсин кофе чай музыка песня песни гитара пианино концерт
    фильм фильмы книга книги книгу роман романы рассказ рассказы стих стихи писать
    написал перевод перевода перевести язык языка языки английский русский грамматика
    слово слова письмо письма встреча встречи расписание проект проекты срок план планы
    команда команды кошка кошки кошку кошкой кот коты собака собаки собаку зебра зебры
    жираф жирафы слон слоны лев львы тигр тигры пингвин пингвины дельфин дельфины кит
    киты
    """
)

# Searched for in the benchmark: a word form a user would type, one per vocabulary word.
QUERIES = [word for word in ENGLISH + RUSSIAN if len(word) > 3]


def fill_statements(users: int, dialogs: int, messages: int) -> list[str]:
    """Dialogs round-robin over users, messages round-robin over dialogs, in time order.

    So one user's messages are spread over the whole table, as in a live database where
    thousands of users write at once; 1 dialog in 50 is deleted.
    """
    return [
        f"""
        INSERT INTO dialogs (id, user_id, title, model_id, created_at, updated_at, deleted_at)
        SELECT md5('dialog' || d)::uuid, 1 + d % {users}, 'Dialog ' || d,
               (SELECT id FROM models WHERE name = 'mock'), :start, :start,
               CASE WHEN d % 50 = 7 THEN :start END
        FROM generate_series(0, {dialogs} - 1) AS d
        """,
        # The inner SELECT refers to the outer row (i), so it runs again for each message;
        # its aggregate refers to w, so the aggregate is the inner query's.
        f"""
        INSERT INTO messages (id, dialog_id, user_id, role, content, status, created_at)
        SELECT md5('message' || i)::uuid, md5('dialog' || (i % {dialogs}))::uuid,
               1 + (i % {dialogs}) % {users},
               CASE WHEN (i / {dialogs}) % 2 = 0 THEN 'user' ELSE 'assistant' END,
               (SELECT string_agg(
                         CASE WHEN i % 7 < 3 AND w > 0
                              THEN ru[1 + floor(power(random(), 2) * cardinality(ru))::int]
                              ELSE en[1 + floor(power(random(), 2) * cardinality(en))::int]
                         END, ' ')
                  FROM generate_series(1, 3 + (i::bigint * 7919) % 78) AS w),
               'complete', :start + i * interval '10 milliseconds'
        FROM generate_series(0, {messages} - 1) AS i,
             (SELECT CAST(:en AS text[]) AS en, CAST(:ru AS text[]) AS ru) AS vocabulary
        """,
    ]
